"""What the scheduler decides: a verdict with a reason for every open invoice, and the
actions (one message per debtor, channel and currency a day) it plans.

Pure data, no I/O: the outbox stores a :class:`PlannedAction` as it is, and the CLI prints
decisions with :func:`explain`. Why an action names each invoice is kept structured
(:class:`StepReason`), so the console can word it in its reader's language.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from debsync.model import DebtorKind, Language


class Reason(StrEnum):
    """Why an invoice is or is not acted on today; stable codes for ``plan --json``."""

    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    PAID = "paid"
    CREDIT = "credit_note"
    NET_BALANCE = "net_balance_not_positive"
    NOT_DUE = "not_yet_due"
    PAUSED = "paused"
    BELOW_THRESHOLD = "below_threshold"
    WAITING_WIK_TERM = "waiting_wik_term"
    NO_WIK = "no_veertiendagenbrief"
    STALE = "data_too_old"
    HANDED_OFF = "handed_off"
    DIRECT_DEBIT = "direct_debit_pending"
    SOURCE_REMINDS = "reminded_by_source"
    PRESCRIBED = "prescribed"
    LADDER_DONE = "ladder_complete"
    UNKNOWN_STEP = "unknown_step_in_history"
    NO_POLICY = "unknown_policy"
    QUEUED = "queued"
    AWAITING_DISPATCH = "awaiting_dispatch"
    ACTION_FAILED = "action_failed"
    REJECTED = "rejected"
    NEEDS_CONTACT = "needs_contact_details"
    MESSAGED_TODAY = "debtor_messaged_today"
    LOWER_STEP_MISSING = "lower_step_missing"


class Decision(NamedTuple):
    """The scheduler's verdict on one invoice."""

    instance: str
    invoice_id: str
    number: str
    debtor_id: str
    reason: Reason
    current_step: str | None
    next_step: str | None
    next_on: date | None
    detail: str


class ClaimLine(NamedTuple):
    """One invoice (or, in :attr:`PlannedAction.credits`, an open credit note with a negative
    ``principal``) in an action. ``step`` is the invoice's own step: in a message combining
    several stages it may be lower than the action's, and that is what its dossier records."""

    invoice_id: str
    number: str
    due_date: date
    days_overdue: int
    principal: Decimal
    interest: Decimal | None
    step: str | None = None


@dataclass(frozen=True)
class StepReason:
    """Why an action names one invoice: its step is due, timed from the due date
    (``days_after_due``) or from the previous step sent (``days_after_previous``; from the due
    date when none was sent). Kept as figures, not text, so every reader words it in their own
    language; :meth:`english` is the scheduler's own wording (CLI, ``--json``, the outbox)."""

    number: str
    step: str
    due_date: date
    days_overdue: int
    days_after_due: int | None = None
    days_after_previous: int | None = None
    previous_step: str | None = None
    previous_sent_on: date | None = None
    named_in: str | None = None  # the higher step whose message names this invoice

    def why(self) -> str:
        """``step 'aanmaning' is due (14 days after ...); 30 days past due``."""
        if self.days_after_due is not None:
            timing = f"{self.days_after_due} days after the due date {self.due_date}"
        elif self.previous_step is not None:
            timing = (
                f"{self.days_after_previous} days after step {self.previous_step!r} was sent "
                f"on {self.previous_sent_on}"
            )
        else:
            timing = f"{self.days_after_previous} days after the due date {self.due_date}"
        return f"step {self.step!r} is due ({timing}); {self.days_overdue} days past due"

    def english(self) -> str:
        """The invoice's part of :attr:`PlannedAction.explanation`."""
        named = f" (named in the {self.named_in!r} message)" if self.named_in else ""
        return f"{self.number}: {self.why()}{named}"

    def as_json(self) -> dict[str, Any]:
        """The figures as the outbox stores them with the action: dates ISO."""
        sent = self.previous_sent_on
        return {
            "number": self.number,
            "step": self.step,
            "due_date": self.due_date.isoformat(),
            "days_overdue": self.days_overdue,
            "days_after_due": self.days_after_due,
            "days_after_previous": self.days_after_previous,
            "previous_step": self.previous_step,
            "previous_sent_on": None if sent is None else sent.isoformat(),
            "named_in": self.named_in,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepReason:
        """A reason as :meth:`as_json` stored it."""
        sent = data["previous_sent_on"]
        return cls(
            number=data["number"],
            step=data["step"],
            due_date=date.fromisoformat(data["due_date"]),
            days_overdue=data["days_overdue"],
            days_after_due=data["days_after_due"],
            days_after_previous=data["days_after_previous"],
            previous_step=data["previous_step"],
            previous_sent_on=None if sent is None else date.fromisoformat(sent),
            named_in=data["named_in"],
        )


def english(reasons: Iterable[StepReason]) -> str:
    """An action's explanation as the scheduler words it: one part per invoice."""
    return "; ".join(reason.english() for reason in reasons)


@dataclass(frozen=True)
class PlannedAction:
    """One message (or task) for one debtor: a step on one channel over their invoices, at
    the highest step among them; ``principal`` is their open amount net of ``credits``."""

    key: str
    instance: str
    debtor_id: str
    policy: str
    step: str
    channel: str
    template: str
    role: str | None
    legal_copy: bool
    requires_approval: bool
    language: Language
    kind: DebtorKind
    currency: str
    lines: tuple[ClaimLine, ...]
    principal: Decimal
    interest: Decimal | None
    costs: Decimal | None
    announced_costs: Decimal | None
    deadline: date
    notes: tuple[str, ...]
    explanation: str  # in English: :func:`english` of ``reasons``, or as an older row stored it
    credits: tuple[ClaimLine, ...] = ()  # open credit notes offset against ``lines``
    reasons: tuple[StepReason, ...] = ()  # why each of ``lines`` is named, in its order

    @property
    def total(self) -> Decimal:
        return self.principal + (self.interest or 0) + (self.costs or 0)


@dataclass
class Plan:
    today: date
    actions: list[PlannedAction]
    decisions: Sequence[Decision]  # a list, or built when first read (debsync.columnar)
    warnings: list[str]

    def explain(self, number: str) -> list[str]:
        """Every decision about invoices with this number (one per instance that has it)."""
        return [explain(d) for d in self.decisions if d.number == number]


def needs_contact(plan: Plan) -> list[dict[str, str | None]]:
    """The invoices no channel the policy allows can reach, with what is missing (``status``
    and ``plan`` list them; ids only, never the contact details themselves)."""
    return [
        {
            "instance": d.instance,
            "debtor": d.debtor_id,
            "invoice": d.invoice_id,
            "number": d.number,
            "step": d.next_step,
            "detail": d.detail,
        }
        for d in plan.decisions
        if d.reason is Reason.NEEDS_CONTACT
    ]


def needs_contact_lines(plan: Plan) -> list[str]:
    """:func:`needs_contact` as lines for a person: a heading, then one line per invoice."""
    found = needs_contact(plan)
    if not found:
        return []
    debtors = len({(n["instance"], n["debtor"]) for n in found})
    lines = [f"needs contact details: {len(found)} invoice(s) of {debtors} debtor(s)"]
    lines += [f"  {n['instance']}/{n['debtor']} {n['number']}: {n['detail']}" for n in found]
    return lines


def explain(d: Decision) -> str:
    where = f"invoice {d.number} ({d.instance})"
    detail = d.detail or _DETAILS.get(d.reason, "")
    at = f"; next step {d.next_step!r} on {d.next_on.isoformat()}" if d.next_on else ""
    current = f"last step sent: {d.current_step!r}" if d.current_step else "no step sent yet"
    return f"{where}: {d.reason.value}: {detail}. {current}{at}"


def idempotency_key(
    instance: str, debtor_id: str, step: str, channel: str, ids: Iterable[str]
) -> str:
    """What an action is about, hashed: the same debtor, step, channel and invoices give the
    same key, so planning twice enqueues once."""
    text = "\x1f".join((instance, debtor_id, step, channel, *sorted(ids)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


_DETAILS = {
    Reason.PAID: "no amount open",
    Reason.CREDIT: "credit notes and negative amounts are never dunned",
    Reason.NET_BALANCE: "the debtor's credit notes cover the open amount",
    Reason.HANDED_OFF: "handed off to the collection agency; nothing more is sent",
    Reason.DIRECT_DEBIT: "collected by direct debit; dunned only once the collection has failed",
    Reason.SOURCE_REMINDS: "left to the bookkeeping program's own reminders",
    Reason.PRESCRIBED: "the claim is prescribed (verjaard); it can no longer be enforced",
    Reason.LADDER_DONE: "every step of the policy was taken",
    Reason.NO_WIK: "a consumer claim is handed off only after a veertiendagenbrief whose term "
    "ended unpaid",
    Reason.NOT_DUE: "the next step is not due yet",
    Reason.NEEDS_CONTACT: "no channel the policy allows can reach the debtor",
    Reason.MESSAGED_TODAY: "one message per debtor and channel a day: the debtor already has "
    "one today, this step follows tomorrow",
    Reason.LOWER_STEP_MISSING: "a step the policy requires before this one was not taken",
}
