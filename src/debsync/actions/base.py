"""The action contract: a channel that carries out one dunning step for one debtor.

The outbox (``debsync.outbox``), not the action, owns retries, leases, approvals and the
in-doubt state, and it builds the :class:`MessageContext`. An action only renders a payload
(pure, also used by ``debsync preview``) and sends it, raising an :class:`ActionError` subclass
that tells the outbox what to do next. A third-party action is therefore small::

    class TeamsSettings(ActionSettings):
        webhook_url: str

    class TeamsAction(Action[TeamsSettings]):
        type_name = "teams"
        Settings = TeamsSettings
        channel = "webhook"
        idempotent = True

        def render(self, context):
            return {"text": f"{context.debtor.external_id}: step {context.step}"}

        async def send(self, payload, idempotency_key):
            ...  # POST payload; raise RetryableActionError on 429/5xx
            return Receipt(provider_id=idempotency_key)

    @debsync.hookimpl
    def debsync_register_actions(register):
        register(TeamsAction)
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from debsync.clock import Clock, system_clock
from debsync.errors import DebsyncError
from debsync.model import Address, DebtorKind, Language

if TYPE_CHECKING:
    from debsync.templates import Templates


class ActionSettings(BaseModel):
    """Base of every action's settings: unknown keys in ``connectors.toml`` are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Payload = dict[str, Any]
"""What ``render`` returns: JSON-serialisable, so the outbox can store it and hash it."""


@dataclass(frozen=True)
class Receipt:
    """What the channel said when it accepted a message.

    :param provider_id: the provider's id for the message (SMTP queue id, SMS id, case id).
    :param details: JSON-serialisable facts worth keeping in the dossier (status, reply text).
    :param dispatched: ``False`` when the message was accepted but has not left yet: a letter
        dropped in the print folder waits for ``debsync letters posted``. The step counts as
        taken, and a legal term starts, only once it is dispatched.
    :param content_sha256: hash of exactly what was delivered (the MIME bytes, the PDF).
    :param dispatched_on: the day the message left, when it was not the day it was handed
        over (a hybrid-mail provider posting tomorrow); a legal term counts from it.
    """

    provider_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    dispatched: bool = True
    content_sha256: str | None = None
    dispatched_on: date | None = None


@dataclass(frozen=True)
class ActionOutcome:
    """What became of one attempt to carry out an action, as observers see it
    (``debsync_action_finished``): ids only, never the message itself.

    :param state: ``"sent"``, ``"failed"`` (will be retried), ``"dead"``, ``"in_doubt"`` or
        ``"cancelled"``.
    :param action: the ``[actions]`` instance that tried, if any got that far.
    """

    key: str
    instance: str
    debtor_id: str
    step: str
    channel: str
    state: str
    attempt: int
    action: str | None = None
    receipt: Receipt | None = None
    error: str | None = None


# -- what a provider says later: delivery reports, case events --------------------------------


@dataclass(frozen=True)
class InboundRequest:
    """A status callback exactly as debsync's endpoint received it. Signatures cover the URL the
    provider called (as configured with the provider) and the raw body, so neither may be
    rebuilt or re-encoded."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class StatusReport:
    """A provider's later word on a message it accepted: an SMS delivered, a case paid.

    :param event_id: unique per report (providers deliver at least once: debsync records
        each event id once).
    :param status: the channel's normalised status, e.g. ``delivered`` or ``payment_received``.
    :param provider_id: the receipt's ``provider_id``; or ``key``, the action's idempotency
        key, where the provider echoes it: either finds the action.
    :param final: nothing more will be reported for this message (polling stops).
    :param details: JSON-serialisable facts for the dossier; no phone numbers or e-mail
        addresses.
    """

    event_id: str
    status: str
    at: datetime
    provider_id: str | None = None
    key: str | None = None
    final: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)


class SentAction(NamedTuple):
    """An action the channel accepted earlier, as :meth:`Action.poll` is asked about it."""

    key: str
    provider_id: str | None
    sent_at: datetime


class InboundError(DebsyncError):
    """A callback debsync cannot use (malformed, misaddressed): answer 400, record nothing."""


class InboundSignatureError(InboundError):
    """A callback not provably from the provider (no, wrong or stale signature): answer 401,
    record nothing."""


# -- what an action raises: named by what the outbox does next ------------------------------


class ActionError(DebsyncError):
    """Root of the errors an action raises on purpose. Messages carry ids, never personal data."""


class RenderError(ActionError):
    """The payload cannot be built (no template, no recipient address, SMS too long). Rendering
    is deterministic, so trying again cannot help: the action is marked dead."""


class RefusedError(ActionError):
    """A precondition does not hold (e.g. a legal one for a handoff): the action is cancelled
    with this reason and never sent."""


class RetryableActionError(ActionError):
    """Nothing reached the debtor and a later attempt may succeed (timeout before sending,
    429, 4xx SMTP reply, 5xx). The outbox retries with backoff.

    :param retry_after: seconds the provider asked to wait (``Retry-After``), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentActionError(ActionError):
    """Nothing reached the debtor and trying again cannot help (recipient rejected, 4xx API
    validation error): the action is marked dead and shown in ``debsync status``."""


class OutcomeUnknownError(ActionError):
    """The message may or may not have reached the debtor (connection lost after the data was
    sent). Non-idempotent channels hold the action for review; idempotent ones retry."""


class ActionUnavailableError(ActionError):
    """The channel itself cannot be used right now (authentication refused, server
    unreachable): no message was attempted. The outbox stops using this action for the rest of
    the run, leaves its actions untouched and reports the error, instead of failing each one."""


# -- the context the core builds --------------------------------------------------------------


@dataclass(frozen=True)
class CreditorContext:
    """The company that is owed (``[creditor]``)."""

    name: str
    address: Address | None = None
    iban: str | None = None
    bic: str | None = None
    kvk: str | None = None
    vat: str | None = None
    email: str | None = None
    phone: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class DebtorContext:
    external_id: str
    name: str
    kind: DebtorKind
    language: Language
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    address: Address | None = None
    kvk: str | None = None
    vat: str | None = None


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice in the message, with its amounts as of today."""

    external_id: str
    number: str
    issue_date: date
    due_date: date
    days_overdue: int
    total: Decimal
    open_amount: Decimal
    interest: Decimal | None = None
    payment_reference: str | None = None
    payment_url: str | None = None
    has_document: bool = False
    stage: str | None = None  # the invoice's own step when the message is at a higher one
    direct_debit_failed: bool = False  # its direct-debit collection failed (a storno)


@dataclass(frozen=True)
class PaymentInstructions:
    """How to pay: to ``iban`` in the name of ``beneficiary``, quoting ``reference``."""

    beneficiary: str
    iban: str | None
    bic: str | None
    reference: str
    url: str | None = None


@dataclass(frozen=True)
class PreviousStep:
    """A step already taken for (some of) these invoices."""

    step: str
    sent_on: date
    role: str | None = None


@dataclass(frozen=True)
class WikProof:
    """The veertiendagenbrief behind a consumer claim: what an agency needs as proof."""

    sent_on: date
    received_on: date
    term_last_day: date
    stated_costs: Decimal | None
    document_sha256: str | None = None


@dataclass(frozen=True)
class InterestClaim:
    """How ``MessageContext.interest`` was computed, for payloads that must state it."""

    article: str  # the law.Article value, e.g. the statutory-interest article
    start: date  # first day interest runs
    until: date
    day_count: str  # law convention's day_count value
    compounding: str  # law convention's compounding value


@dataclass(frozen=True)
class MessageContext:
    """Everything a template or an action may use. Amounts are ``Decimal`` in ``currency``.

    ``principal`` is the open amount of ``invoices``; ``interest`` and ``costs`` are ``None``
    when the step claims none (or the law allows none yet); ``announced_costs`` is the exact
    collection-costs amount a veertiendagenbrief states; ``deadline`` is the new last day of
    payment; ``legal_copy`` marks the copy whose receipt starts a legal term;
    ``costs_basis`` says which rule the costs follow: ``"staffel"`` (the BIK staffel, for
    consumers always) or ``"compensation"`` (EUR 40 per invoice, art. 6:96 lid 4 BW);
    ``interest_claim`` says how ``interest`` was computed, so an action can state it without
    importing the law.
    """

    key: str
    instance: str
    step: str
    template: str
    channel: str
    role: str | None
    language: Language
    today: date
    creditor: CreditorContext
    debtor: DebtorContext
    invoices: tuple[InvoiceLine, ...]
    currency: str
    principal: Decimal
    interest: Decimal | None
    costs: Decimal | None
    announced_costs: Decimal | None
    deadline: date
    payment: PaymentInstructions
    legal_copy: bool = False
    costs_basis: str | None = None
    costs_vat_rate: Decimal | None = None
    notes: tuple[str, ...] = ()
    previous_steps: tuple[PreviousStep, ...] = ()
    wik: WikProof | None = None
    interest_claim: InterestClaim | None = None
    credits: tuple[InvoiceLine, ...] = ()  # open credit notes (negative) netted in principal

    @property
    def total(self) -> Decimal:
        return self.principal + (self.interest or 0) + (self.costs or 0)


DocumentFetcher = Callable[[str, str], Awaitable[bytes | None]]
"""``await fetch(connector_instance, invoice_external_id)``: the invoice PDF, if the connector
can supply it; the core asks the connector, so actions never touch connectors."""


async def _no_documents(instance: str, invoice_id: str) -> bytes | None:
    return None


@dataclass(frozen=True)
class ActionEnvironment:
    """What the core gives an action: never the store, never a connector.

    :param config_dir: directory of ``connectors.toml``; relative paths resolve against it.
    :param templates: the template set (shipped defaults plus the operator's overrides).
    """

    instance: str
    config_dir: Path
    templates: Templates
    clock: Clock = system_clock
    fetch_document: DocumentFetcher = _no_documents
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("debsync.action"))


ActionSettingsT = TypeVar("ActionSettingsT", bound=ActionSettings)


class Action(ABC, Generic[ActionSettingsT]):
    """Base class of every action type.

    :cvar type_name: the ``type = "..."`` value of ``[actions.<instance>]``.
    :cvar Settings: pydantic model validating the instance's table.
    :cvar channel: the policy channel it serves: ``"email"``, ``"sms"``, ``"letter"``,
        ``"call"``, ``"agency"`` or ``"webhook"``.
    :cvar idempotent: ``True`` only when sending the same payload twice with the same
        idempotency key cannot reach the debtor twice (the receiver deduplicates on the key);
        the outbox then retries in-doubt sends by itself instead of asking a person.

    An action is used as an async context manager around a batch of sends, so it can open one
    connection for the batch: override :meth:`__aenter__` / :meth:`__aexit__`.
    """

    type_name: ClassVar[str]
    Settings: ClassVar[type[ActionSettings]]
    channel: ClassVar[str]
    idempotent: ClassVar[bool] = False
    uses_templates: ClassVar[bool] = False
    """``True`` when ``render`` reads ``<channel>/<template>.<language>.j2``: ``debsync config
    check`` then verifies such a template exists for every step the policies send on it."""

    def __init__(self, instance: str, settings: ActionSettingsT, env: ActionEnvironment) -> None:
        self.instance = instance
        self.settings = settings
        self.env = env

    @abstractmethod
    def render(self, context: MessageContext) -> Payload:
        """Build the JSON-serialisable payload. Pure: no I/O (templates are read through
        ``self.env.templates``). Raise :class:`RenderError` or :class:`RefusedError`."""

    @abstractmethod
    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        """Deliver the payload. Raise :class:`RetryableActionError`,
        :class:`PermanentActionError`, :class:`OutcomeUnknownError` or
        :class:`ActionUnavailableError`; any other exception counts as an unknown outcome."""

    poll_window_days: ClassVar[int] = 0
    """How long after sending :meth:`poll` is asked about an action (0: never)."""

    def receive(self, request: InboundRequest) -> list[StatusReport]:
        """Turn a status callback from the channel's provider (``POST /inbound/<instance>``
        on ``debsync serve``) into reports. Pure apart from the clock; raise
        :class:`InboundSignatureError` or :class:`InboundError` for one to refuse."""
        raise InboundError(f"{self.type_name} actions take no callbacks")

    async def poll(self, sent: Sequence[SentAction]) -> list[StatusReport]:
        """Ask the provider about actions sent in the last ``poll_window_days`` that have
        no final report yet. Raise the usual action errors when the provider cannot answer."""
        return []

    def preview(self, payload: Payload) -> str:
        """Human-readable rendering of a payload for ``debsync preview``."""
        return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None
