"""Collection-agency handoff (``type = "agency"``): the claim as a ``debsync.handoff/v1`` case.

The generic adapter speaks debsync's own handoff protocol (docs/handoff.md, payload schema in
docs/handoff.schema.json): ``POST {base_url}/cases`` with the case, signed
(``debsync.actions.signing``) and keyed by the outbox key as ``Idempotency-Key``, which the
agency deduplicates on, so the action is idempotent. An agency or an integrator builds
against the protocol, or a plugin maps the same payload to one agency's own API.

``render`` refuses (:class:`RefusedError`, the action is cancelled with the reason) a handoff
the law or the agency does not allow: a consumer claim (or one of a debtor of unknown kind,
treated as a consumer) without an expired veertiendagenbrief (art. 6:96 lid 6 BW), or handed
to an agency with neither a Wki registration nor an exemption (Wet kwaliteit
incassodienstverlening, in force since 1 April 2024); a principal below the agency's minimum;
a currency it does not take.

Status comes back two ways, both giving :class:`AgencyEvent`: pushed events, checked with
:meth:`AgencyAction.receive` (or :func:`~debsync.actions.signing.verify_signature` and
:func:`parse_status_event`), and :meth:`AgencyAction.poll`. The core records them in the
dossier and deduplicates on the event id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from debsync import hookimpl
from debsync.actions.base import (
    ActionSettings,
    CreditorContext,
    InboundError,
    InboundRequest,
    MessageContext,
    OutcomeUnknownError,
    Payload,
    PermanentActionError,
    Receipt,
    RefusedError,
    RetryableActionError,
    SentAction,
    StatusReport,
)
from debsync.actions.http import HttpUrl, SignedHttpAction, SignedHttpSettings, safe_code
from debsync.actions.signing import SIGNATURE_HEADER, verify_signature
from debsync.actions.webhook import amount_text, optional_amount, utc_timestamp
from debsync.hookspecs import RegisterAction
from debsync.model import Address, Amount, Currency, DebtorKind

HANDOFF_SCHEMA = "debsync.handoff/v1"

ExemptReason = Literal["advocaat", "gerechtsdeurwaarder"]


class AgencySettings(SignedHttpSettings):
    """``type = "agency"``: an agency (or integrator) speaking the debsync handoff protocol."""

    base_url: HttpUrl = Field(
        description="Root of the agency's debsync handoff API; cases go to {base_url}/cases."
    )
    name: str = Field(min_length=1, description="The agency's name, as sent in every case.")
    wki_registration_number: str | None = Field(
        default=None,
        min_length=1,
        description="The agency's registration in the Justis register (Wet kwaliteit "
        "incassodienstverlening). Without it, or exempt_reason, consumer claims are refused.",
    )
    exempt_reason: ExemptReason | None = Field(
        default=None,
        description='Why the agency needs no Wki registration: "advocaat" or '
        '"gerechtsdeurwaarder" (they have their own supervision).',
    )
    nvi_member: bool = Field(
        default=False,
        description="The agency is a member of the NVI (Nederlandse Vereniging van "
        "Incasso-ondernemingen); informational, sent in every case.",
    )
    min_principal: Amount = Field(
        default=Decimal(0),
        ge=0,
        description="Smallest open principal the agency takes on, in the claim's currency; "
        "a smaller claim is refused.",
    )
    currencies: tuple[Currency, ...] = Field(
        default=("EUR",),
        min_length=1,
        description="ISO 4217 currencies the agency accepts claims in; others are refused.",
    )

    @property
    def endpoint(self) -> str:
        return self.base_url


# -- what the agency reports back ------------------------------------------------------------


class AgencyStatus(StrEnum):
    """Where a handed-off case stands, normalised from the agency's events."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in_progress"
    PAYMENT_RECEIVED = "payment_received"
    CLOSED = "closed"


@dataclass(frozen=True)
class AgencyPayment:
    """A payment the agency collected, with its allocation (art. 6:44 BW: costs, then
    interest, then principal) when the agency gives one."""

    amount: Decimal
    currency: str
    received_on: date | None = None
    costs: Decimal | None = None
    interest: Decimal | None = None
    principal: Decimal | None = None


@dataclass(frozen=True)
class AgencyEvent:
    """One status event about a handed-off case; ``id`` is unique per event (deduplicate on
    it: agencies deliver at least once).

    :param type: the agency's event type, e.g. ``"payment.received"``.
    :param status: the normalised status, or ``None`` for an event type that does not change
        it (types a later protocol version adds are recorded, not rejected).
    :param agency_status: the agency's own phase of a ``case.status_changed`` (``"amicable"``,
        ``"legal"``, ``"bailiff"``, …).
    :param close_reason: of ``case.closed``: ``paid``, ``partially_paid``, ``uncollectable``,
        ``withdrawn`` or ``disputed``.
    :param reasons: of ``handoff.rejected``: the agency's reason codes.
    """

    id: str
    type: str
    occurred_at: datetime
    handoff_id: str
    agency_case_id: str | None
    status: AgencyStatus | None
    agency_status: str | None = None
    payment: AgencyPayment | None = None
    close_reason: str | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventReject:
    """A polled event that could not be used: its id (or page and position) and why."""

    ref: str
    reason: str


@dataclass(frozen=True)
class PollResult:
    """What :meth:`AgencyAction.poll` found: the events, each id once and in the agency's
    order, and the ones it could not read (logged, and for the status output)."""

    events: tuple[AgencyEvent, ...]
    rejects: tuple[EventReject, ...]


@dataclass(frozen=True)
class AgencyCase:
    """The agency's answer about one case: ``POST /cases`` and ``GET /cases/{handoff_id}``."""

    handoff_id: str | None
    agency_case_id: str | None
    status: str | None


class EventError(InboundError):
    """A status event is not a valid ``debsync.handoff/v1`` event; the message names the
    field, never its value."""


def _case_id(value: object) -> object:
    """Agencies with numeric case ids send them as numbers; debsync keeps ids as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
_CaseId = Annotated[_Text, BeforeValidator(_case_id)]
_Money = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,15}(\.[0-9]{1,3})?$")]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # later versions may add fields


class _Allocation(_Wire):
    costs: _Money | None = None
    interest: _Money | None = None
    principal: _Money | None = None


class _Reason(_Wire):
    code: str
    field: str | None = None


class _Data(_Wire):
    status: _Text | None = None
    amount: _Money | None = None
    currency: Currency | None = None
    received_on: date | None = None
    allocation: _Allocation | None = None
    reason: _Text | None = None
    reasons: list[_Reason] = Field(default_factory=list)


class _Envelope(_Wire):
    id: _Text
    type: _Text
    occurred_at: AwareDatetime
    handoff_id: _Text
    agency_case_id: _CaseId | None = None
    data: _Data | None = None


_PHASES = {
    "accepted": AgencyStatus.ACCEPTED,
    "rejected": AgencyStatus.REJECTED,
    "closed": AgencyStatus.CLOSED,
}  # any other phase of case.status_changed (amicable, legal, bailiff, …) is in progress


def _payment(data: _Data) -> AgencyPayment:
    if data.amount is None or data.currency is None:
        raise EventError("payment.received needs data.amount and data.currency")
    amount = Decimal(data.amount)
    parts = data.allocation
    if parts is None:
        return AgencyPayment(amount, data.currency, data.received_on)
    costs, interest, principal = (
        None if part is None else Decimal(part)
        for part in (parts.costs, parts.interest, parts.principal)
    )
    if sum((p for p in (costs, interest, principal) if p is not None), Decimal(0)) != amount:
        raise EventError("data.allocation does not add up to data.amount")
    return AgencyPayment(amount, data.currency, data.received_on, costs, interest, principal)


def _event(item: object) -> AgencyEvent:
    try:
        envelope = _Envelope.model_validate(item)
    except ValidationError as exc:
        located = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'event'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise EventError(f"not a status event: {located}") from None
    data = envelope.data or _Data()
    status: AgencyStatus | None = None
    payment = None
    match envelope.type:
        case "handoff.accepted":
            status = AgencyStatus.ACCEPTED
        case "handoff.rejected":
            status = AgencyStatus.REJECTED
        case "case.status_changed":
            if data.status is None:
                raise EventError("case.status_changed needs data.status")
            status = _PHASES.get(data.status, AgencyStatus.IN_PROGRESS)
        case "payment.received":
            status, payment = AgencyStatus.PAYMENT_RECEIVED, _payment(data)
        case "case.closed":
            status = AgencyStatus.CLOSED
    reasons = (safe_code(reason.code) for reason in data.reasons)
    return AgencyEvent(
        id=envelope.id,
        type=envelope.type,
        occurred_at=envelope.occurred_at.astimezone(UTC),
        handoff_id=envelope.handoff_id,
        agency_case_id=envelope.agency_case_id,
        status=status,
        agency_status=data.status if envelope.type == "case.status_changed" else None,
        payment=payment,
        close_reason=data.reason if envelope.type == "case.closed" else None,
        reasons=tuple(code for code in reasons if code is not None),
    )


def parse_status_event(raw_body: bytes | str) -> AgencyEvent:
    """Read one status event (the body of a pushed event). Verify its signature first.

    :raises EventError: not JSON, or not an event (missing id, type, occurred_at or
        handoff_id; a payment without amount or currency, or whose allocation does not add
        up). Unknown event types are not an error: they come back with ``status=None``.
    """
    try:
        item = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise EventError("the body is not JSON") from None
    return _event(item)


# -- the payload ------------------------------------------------------------------------------

_STREET_LINE = re.compile(
    r"^(?P<street>.+?)\s+(?P<number>[0-9]{1,5})"
    r"(?:\s*[-/]\s*(?P<attached>[0-9A-Za-z]{1,6})"
    r"|\s*(?P<suffix>[A-Za-z][0-9A-Za-z]{0,5}(?:\s[0-9A-Za-z]{1,4})?))?$"
)


@dataclass(frozen=True)
class StreetLine:
    street: str
    house_number: str
    house_number_suffix: str | None


def split_street_line(line: str) -> StreetLine | None:
    """``"Dorpsstraat 14 A"`` → Dorpsstraat, 14, A; ``"Hoofdweg 123-II"`` → …, 123, II;
    ``None`` for a line that does not read as a Dutch street and house number."""
    found = _STREET_LINE.match(" ".join(line.split()))
    if found is None or not any(ch.isalpha() for ch in found["street"]):
        return None
    return StreetLine(found["street"], found["number"], found["attached"] or found["suffix"])


def _address(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    parts = None
    if address.country == "NL" and address.lines:
        parts = split_street_line(address.lines[-1])  # a Dutch street line comes last
    return {
        "lines": list(address.lines),
        "street": parts.street if parts else None,
        "house_number": parts.house_number if parts else None,
        "house_number_suffix": parts.house_number_suffix if parts else None,
        "postal_code": address.postcode or None,
        "city": address.city or None,
        "country": address.country,
    }


def _creditor(creditor: CreditorContext) -> dict[str, Any]:
    return {
        "name": creditor.name,
        "kvk": creditor.kvk,
        "vat_number": creditor.vat,
        "iban": creditor.iban,
        "bic": creditor.bic,
        "email": creditor.email,
        "phone": creditor.phone,
        "website": creditor.website,
        "address": _address(creditor.address),
    }


def _interest(context: MessageContext) -> dict[str, Any] | None:
    """Statutory interest and how the core computed it: the article, the period, the day count
    and the compounding (``MessageContext.interest_claim``)."""
    claim = context.interest_claim
    if context.interest is None or claim is None:
        return None
    return {
        "type": claim.article,
        "amount": amount_text(context.interest, context.currency),
        "from": claim.start.isoformat(),
        "until": claim.until.isoformat(),
        "day_count": claim.day_count,
        "compounding": claim.compounding,
    }


def _costs(context: MessageContext) -> dict[str, Any] | None:
    """Collection costs and their legal basis: the BIK staffel (consumers always; businesses
    where the policy chose it) or the EUR 40 per invoice of art. 6:96 lid 4 BW (never VAT)."""
    if context.costs is None:
        return None
    vat_rate = context.costs_vat_rate
    if context.debtor.kind is not DebtorKind.BUSINESS:
        basis = "bik_staffel"
    elif context.costs_basis == "compensation":
        basis, vat_rate = "b2b_compensation", None
    else:
        basis = "b2b_staffel"
    return {
        "basis": basis,
        "amount": amount_text(context.costs, context.currency),
        "vat_rate": None if vat_rate is None else str(vat_rate),
    }


class AgencyAction(SignedHttpAction[AgencySettings]):
    """Hands a claim over with ``POST {base_url}/cases``; reads status back with
    :meth:`receive` (pushed events) and :meth:`poll`."""

    type_name: ClassVar[str] = "agency"
    Settings: ClassVar[type[ActionSettings]] = AgencySettings
    channel: ClassVar[str] = "agency"
    idempotent: ClassVar[bool] = True  # the agency deduplicates on Idempotency-Key

    def _url(self, *parts: str) -> str:
        path = "/".join(quote(part, safe="") for part in parts)
        return f"{self.settings.base_url.rstrip('/')}/{path}"

    # -- render ---------------------------------------------------------------------------

    def _refusals(self, context: MessageContext) -> list[str]:
        settings, currency = self.settings, context.currency
        reasons = []
        if currency not in settings.currencies:
            reasons.append(f"the agency takes claims in {', '.join(settings.currencies)} only")
        elif context.principal < settings.min_principal:
            minimum = amount_text(settings.min_principal, currency)
            reasons.append(f"the principal is below the agency's minimum of {currency} {minimum}")
        if context.debtor.kind is not DebtorKind.BUSINESS:
            wik = context.wik
            if wik is None:
                reasons.append(
                    "no veertiendagenbrief covers every invoice: a consumer owes collection "
                    "costs, and is handed over, only after one expired unpaid (art. 6:96 lid 6 "
                    "BW)"
                )
            elif wik.term_last_day >= context.today:
                reasons.append(f"the veertiendagenbrief's term runs until {wik.term_last_day}")
            if not (settings.wki_registration_number or settings.exempt_reason):
                reasons.append(
                    "the agency has neither wki_registration_number nor exempt_reason: only a "
                    "registered agency (or an advocaat or gerechtsdeurwaarder) may collect "
                    "from consumers (Wet kwaliteit incassodienstverlening)"
                )
        return reasons

    def render(self, context: MessageContext) -> Payload:
        debtor, currency = context.debtor, context.currency
        refusals = self._refusals(context)
        if refusals:
            raise RefusedError(
                f"handoff of debtor {debtor.external_id} ({debtor.kind.value}) to agency "
                f"{self.instance} refused: {'; '.join(refusals)}"
            )
        business = debtor.kind is DebtorKind.BUSINESS
        until = context.today.isoformat()
        wik = context.wik
        return {
            "schema": HANDOFF_SCHEMA,
            "handoff_id": context.key,
            "instance": context.instance,
            "step": context.step,
            "creditor": _creditor(context.creditor),
            "agency": {
                "name": self.settings.name,
                "wki_registration_number": self.settings.wki_registration_number,
                "exempt_reason": self.settings.exempt_reason,
                "nvi_member": self.settings.nvi_member,
            },
            "debtor": {
                "external_id": debtor.external_id,
                "kind": debtor.kind.value,
                "name": debtor.name,
                "language": debtor.language.value,
                "address": _address(debtor.address),
                "emails": list(debtor.emails),
                "phones": list(debtor.phones),
                "kvk": debtor.kvk if business else None,
                "vat_number": debtor.vat if business else None,
            },
            "claim": {
                "currency": currency,
                "principal": amount_text(context.principal, currency),
                "interest": _interest(context),
                "costs": _costs(context),
                "total": amount_text(context.total, currency),
                "invoices": [
                    {
                        "external_id": line.external_id,
                        "number": line.number,
                        "issue_date": line.issue_date.isoformat(),
                        "due_date": line.due_date.isoformat(),
                        "days_overdue": line.days_overdue,
                        "amount_total": amount_text(line.total, currency),
                        "amount_open": amount_text(line.open_amount, currency),
                        "interest": None
                        if line.interest is None
                        else {
                            "from": (line.due_date + timedelta(days=1)).isoformat(),
                            "until": until,
                            "amount": amount_text(line.interest, currency),
                        },
                        "payment_reference": line.payment_reference,
                    }
                    for line in context.invoices
                ],
            },
            "veertiendagenbrief": None
            if wik is None
            else {
                "sent_on": wik.sent_on.isoformat(),
                "received_on": wik.received_on.isoformat(),
                "term_last_day": wik.term_last_day.isoformat(),
                "stated_costs": optional_amount(wik.stated_costs, currency),
                "document_sha256": wik.document_sha256,
            },
            "steps": [
                {"step": step.step, "role": step.role, "sent_on": step.sent_on.isoformat()}
                for step in context.previous_steps
            ],
        }

    def preview(self, payload: Payload) -> str:
        claim, debtor, agency = payload["claim"], payload["debtor"], payload["agency"]
        currency = claim["currency"]
        registration = agency["wki_registration_number"] or agency["exempt_reason"] or "none"
        figures = [f"principal {currency} {claim['principal']}"]
        if claim["interest"]:
            interest = claim["interest"]
            figures.append(
                f"interest (art. {interest['type']} BW, {interest['from']} to "
                f"{interest['until']}) {currency} {interest['amount']}"
            )
        if claim["costs"]:
            figures.append(
                f"costs ({claim['costs']['basis']}) {currency} {claim['costs']['amount']}"
            )
        figures.append(f"total {currency} {claim['total']}")
        lines = [
            f"POST {self._url('cases')}  Idempotency-Key: {payload['handoff_id']}",
            f"agency: {agency['name']} (Wki: {registration})",
            f"debtor: {debtor['name']} ({debtor['external_id']}, {debtor['kind']})",
            f"claim: {len(claim['invoices'])} invoice(s); " + "; ".join(figures),
        ]
        letter = payload["veertiendagenbrief"]
        if letter:
            lines.append(
                f"veertiendagenbrief: sent {letter['sent_on']}, received {letter['received_on']},"
                f" term ended {letter['term_last_day']}, costs stated {letter['stated_costs']}"
            )
        return "\n".join(lines) + "\n\n" + super().preview(payload)

    # -- send -----------------------------------------------------------------------------

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        body = {**payload, "created_at": utc_timestamp(self.env.clock())}
        posted = await self._http.post_json(self._url("cases"), body, idempotency_key)
        response = posted.response
        if not (response.is_success or response.status_code == 409):
            raise self._http.failure(response)
        case = await self._settle(response, idempotency_key)
        self.env.logger.info(
            "action %s: agency %s has case %s (HTTP %s)",
            idempotency_key,
            self.instance,
            case.agency_case_id,
            response.status_code,
        )
        return Receipt(
            provider_id=case.agency_case_id,
            details={
                "http_status": response.status_code,
                "duplicate": response.status_code == 409,
                "agency_status": case.status,
            },
            content_sha256=posted.sha256,
        )

    async def _settle(self, response: httpx.Response, key: str) -> AgencyCase:
        """The case a 2xx or 409 answer is about: from the answer, else looked up by key."""
        code = response.status_code
        case = _case(response)
        if case is not None and case.handoff_id not in (None, key):
            raise PermanentActionError(
                f"action {self.instance}: POST /cases answered {code} about handoff "
                f"{case.handoff_id}, not {key}; the agency must resolve the conflict"
            )
        if case is None or case.agency_case_id is None:
            case = await self.case(key)
        if case is not None and case.agency_case_id is not None:
            return case
        if code == 409:
            raise PermanentActionError(
                f"action {self.instance}: POST /cases answered 409 but the agency has no case "
                f"under handoff {key}: the conflict is about something else"
            )
        raise OutcomeUnknownError(
            f"action {self.instance}: POST /cases answered {code} without a case id and the "
            f"agency does not know handoff {key}; retried with the same Idempotency-Key"
        )

    async def case(self, handoff_id: str) -> AgencyCase | None:
        """``GET {base_url}/cases/{handoff_id}``: the agency's case, ``None`` if it has none."""
        response = await self._http.get(self._url("cases", handoff_id))
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._http.failure(response)
        case = _case(response)
        if case is None:
            raise RetryableActionError(
                f"action {self.instance}: GET /cases/{handoff_id} answered an unreadable body"
            )
        return case

    # -- status -----------------------------------------------------------------------------

    poll_window_days: ClassVar[int] = 730  # a case can run for years (legal, bailiff)

    def receive(self, request: InboundRequest) -> list[StatusReport]:
        """A pushed event (``POST /inbound/<instance>`` on ``debsync serve``)."""
        return [_status_report(self.receive_event(request.header(SIGNATURE_HEADER), request.body))]

    async def poll(self, sent: Sequence[SentAction]) -> list[StatusReport]:
        """The events of each handed-off case since it was handed off; events without a
        status are kept too (the dossier records them), rejects are logged by poll_case."""
        reports = []
        for handoff in sent:
            result = await self.poll_case(handoff.key, handoff.sent_at)
            reports += [_status_report(event) for event in result.events]
        return reports

    def receive_event(self, signature_header: str | None, raw_body: bytes) -> AgencyEvent:
        """A pushed event, checked against this agency's secret and the clock.

        :raises debsync.actions.signing.SignatureError: bad or stale signature (answer 401).
        :raises EventError: a signed body that is not an event (answer 400).
        """
        verify_signature(self.settings.secret, signature_header, raw_body, self.env.clock())
        return parse_status_event(raw_body)

    async def poll_case(self, handoff_id: str, since: datetime | None = None) -> PollResult:
        """Events of one case from ``GET {base_url}/cases/{handoff_id}/events``, following
        the ``next`` cursor until the agency gives none.

        :param since: only events that occurred at or after this moment (the core passes the
            latest it has; overlap is harmless, it deduplicates on the event id).
        :raises RetryableActionError: 429, 5xx, a timeout or an unreadable page: poll later.
        :raises ActionUnavailableError: credentials refused or the agency unreachable.
        :raises PermanentActionError: the agency does not know ``handoff_id``.
        """
        url = self._url("cases", handoff_id, "events")
        params = {"since": utc_timestamp(since)} if since is not None else {}
        events: dict[str, AgencyEvent] = {}
        rejects: list[EventReject] = []
        cursors: set[str] = set()
        page = 0
        while True:
            page += 1
            response = await self._http.get(url, params)
            if response.status_code == 404:
                raise PermanentActionError(
                    f"action {self.instance}: the agency does not know handoff {handoff_id}"
                )
            if not response.is_success:
                raise self._http.failure(response)
            items, cursor = self._page(response, handoff_id, page)
            for position, item in enumerate(items, start=1):
                named = safe_code(item.get("id")) if isinstance(item, Mapping) else None
                ref = named or f"page {page} item {position}"
                try:
                    event = _event(item)
                except EventError as exc:
                    rejects.append(EventReject(ref, str(exc)))
                    continue
                if event.handoff_id != handoff_id:
                    rejects.append(EventReject(ref, "the event is about another handoff"))
                    continue
                events.setdefault(event.id, event)
            if cursor is None:
                break
            if cursor in cursors:
                raise RetryableActionError(
                    f"action {self.instance}: the events of handoff {handoff_id} repeat a cursor"
                )
            cursors.add(cursor)
            params = {"cursor": cursor}
        for reject in rejects:
            self.env.logger.warning(
                "handoff %s: agency event %s skipped: %s", handoff_id, reject.ref, reject.reason
            )
        return PollResult(tuple(events.values()), tuple(rejects))

    def _page(
        self, response: httpx.Response, handoff_id: str, page: int
    ) -> tuple[Sequence[object], str | None]:
        """``{"data": [events…], "next": cursor | null}``."""
        try:
            body = response.json()
        except ValueError:
            body = None
        items = body.get("data") if isinstance(body, Mapping) else None
        cursor = body.get("next") if isinstance(body, Mapping) else None
        if not isinstance(items, list) or not (cursor is None or isinstance(cursor, str)):
            raise RetryableActionError(
                f"action {self.instance}: page {page} of the events of handoff {handoff_id} "
                'is not {"data": [...], "next": ...}'
            )
        return items, cursor or None


FINAL = frozenset({AgencyStatus.REJECTED, AgencyStatus.CLOSED})


def _status_report(event: AgencyEvent) -> StatusReport:
    """An agency event as a report for the dossier (amounts as strings, reasons as codes)."""
    payment = event.payment
    return StatusReport(
        event_id=event.id,
        status=event.status.value if event.status else event.type,
        at=event.occurred_at,
        provider_id=event.agency_case_id,
        key=event.handoff_id,
        final=event.status in FINAL,
        details={
            "type": event.type,
            "agency_status": event.agency_status,
            "close_reason": event.close_reason,
            "reasons": list(event.reasons),
            "payment": None
            if payment is None
            else {
                "amount": str(payment.amount),
                "currency": payment.currency,
                "costs": None if payment.costs is None else str(payment.costs),
                "interest": None if payment.interest is None else str(payment.interest),
                "principal": None if payment.principal is None else str(payment.principal),
                "received_on": payment.received_on.isoformat() if payment.received_on else None,
            },
        },
    )


def _case(response: httpx.Response) -> AgencyCase | None:
    """``{"handoff_id", "agency_case_id", "status"}``, or ``None`` for an unreadable body."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, Mapping):
        return None
    handoff_id, case_id = body.get("handoff_id"), _case_id(body.get("agency_case_id"))
    return AgencyCase(
        handoff_id=handoff_id if isinstance(handoff_id, str) else None,
        agency_case_id=case_id if isinstance(case_id, str) and 0 < len(case_id) <= 255 else None,
        status=safe_code(body.get("status")),
    )


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(AgencyAction)
