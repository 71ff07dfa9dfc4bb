"""What the scheduler reads: the facts of invoices, debtors, steps taken, pauses and actions
under way, as plain values.

Pure data, no I/O: the store-facing loader (:mod:`debsync.planning`), the outbox and the
actions all speak these types, and none of them has to import the scheduler to do so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Literal, NamedTuple

from debsync.model import DebtorKind, Language
from debsync.policy import DEFAULT_POLICY


class InvoiceFacts(NamedTuple):
    """What the scheduler needs of one invoice. Amounts in integer minor units."""

    instance: str
    external_id: str
    number: str
    debtor_id: str
    due_date: date
    currency: str
    open_minor: int
    direct_debit: bool = False
    closed: bool = False
    direct_debit_failed: bool = False
    reminded_by_source: bool = False


class DebtorFacts(NamedTuple):
    """What the scheduler needs of one debtor.

    :param unreachable: channels that cannot reach this debtor (``"email"`` without an
        address, ``"letter"`` without a postal address, …): a step drops them, and a step left
        without channels falls back to its ``fallback_channels`` (:mod:`debsync.ladder`).
    """

    instance: str
    external_id: str
    kind: DebtorKind = DebtorKind.UNKNOWN
    language: Language = Language.NL
    policy: str | None = None
    unreachable: frozenset[str] = frozenset()


class StepSent(NamedTuple):
    """A step that was actually carried out for an invoice (from the outbox's record, or
    recorded in the source before debsync took over: ``elsewhere``).

    For a veertiendagenbrief, ``received_on`` is the presumed receipt counted from the posting
    date, and ``stated_costs_minor`` the costs amount the letter stated.
    """

    step: str
    sent_on: date
    role: str | None = None
    received_on: date | None = None
    stated_costs_minor: int | None = None
    elsewhere: str | None = None
    """The source (``csv``, ``exact``) that recorded the step before debsync took over, or
    None for a step debsync sent (:mod:`debsync.prior_steps`)."""


class PauseKind(StrEnum):
    DISPUTE = "dispute"
    PROMISE = "promise"
    PAYMENT_PLAN = "payment_plan"
    HOLD = "hold"


PauseScope = Literal["invoice", "debtor", "instance"]


class Instalment(NamedTuple):
    due_on: date
    amount_minor: int


@dataclass(frozen=True)
class Pause:
    """An active pause as recorded in the dossier.

    :param until: promise: the promised date; hold: the last day of the hold; dispute: None.
    :param balance_minor: payment plan: the open amount in scope when the plan was agreed.
    """

    id: str
    kind: PauseKind
    instance: str
    scope: PauseScope
    target: str
    reason: str
    author: str
    created_at: datetime
    until: date | None = None
    instalments: tuple[Instalment, ...] = ()
    balance_minor: int | None = None


class PendingStep(NamedTuple):
    """An outbox action that already covers an invoice and has not finished: the invoice is
    not planned again until it has (``state`` is the outbox state; a letter that was printed
    but not yet posted is ``"sent"`` with ``dispatched`` False)."""

    key: str
    step: str
    channel: str
    state: str
    dispatched: bool = True


@dataclass(frozen=True)
class InstanceFacts:
    """One configured connector instance; ``source`` is its connector type (``moneybird``)."""

    name: str
    policy: str = DEFAULT_POLICY
    last_success_at: datetime | None = None
    source: str = ""


@dataclass
class Snapshot:
    """Everything the scheduler reads, loaded by :mod:`debsync.planning`."""

    invoices: Sequence[InvoiceFacts]
    debtors: Mapping[tuple[str, str], DebtorFacts]
    instances: Mapping[str, InstanceFacts]
    history: Mapping[tuple[str, str], Sequence[StepSent]] = field(default_factory=dict)
    pauses: Sequence[Pause] = ()
    pending: Mapping[tuple[str, str], PendingStep] = field(default_factory=dict)
    # (instance, debtor, channel) -> key of an action planned for it today (one a day)
    messaged_today: Mapping[tuple[str, str, str], str] = field(default_factory=dict)
