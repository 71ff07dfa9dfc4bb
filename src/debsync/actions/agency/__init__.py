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

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import Field

from debsync import hookimpl
from debsync.actions.agency.events import (
    AgencyCase,
    AgencyEvent,
    AgencyPayment,
    AgencyStatus,
    EventError,
    EventReject,
    PollResult,
    case_of,
    event_from_item,
    parse_status_event,
    status_report,
)
from debsync.actions.agency.payload import (
    HANDOFF_SCHEMA,
    StreetLine,
    address_json,
    costs_json,
    creditor_json,
    interest_json,
    split_street_line,
)
from debsync.actions.base import (
    ActionSettings,
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
from debsync.model import Amount, Currency, DebtorKind

__all__ = [
    "HANDOFF_SCHEMA",
    "AgencyAction",
    "AgencyCase",
    "AgencyEvent",
    "AgencyPayment",
    "AgencySettings",
    "AgencyStatus",
    "EventError",
    "EventReject",
    "PollResult",
    "StreetLine",
    "debsync_register_actions",
    "parse_status_event",
    "split_street_line",
]

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


# -- the payload ------------------------------------------------------------------------------


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
            "creditor": creditor_json(context.creditor),
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
                "address": address_json(debtor.address),
                "emails": list(debtor.emails),
                "phones": list(debtor.phones),
                "kvk": debtor.kvk if business else None,
                "vat_number": debtor.vat if business else None,
            },
            "claim": {
                "currency": currency,
                "principal": amount_text(context.principal, currency),
                "interest": interest_json(context),
                "costs": costs_json(context),
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
                "credit_notes": [
                    {
                        "external_id": credit.external_id,
                        "number": credit.number,
                        "issue_date": credit.issue_date.isoformat(),
                        "amount_offset": amount_text(-credit.open_amount, currency),
                    }
                    for credit in context.credits
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
        case = case_of(response)
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
        case = case_of(response)
        if case is None:
            raise RetryableActionError(
                f"action {self.instance}: GET /cases/{handoff_id} answered an unreadable body"
            )
        return case

    # -- status -----------------------------------------------------------------------------

    poll_window_days: ClassVar[int] = 730  # a case can run for years (legal, bailiff)

    def receive(self, request: InboundRequest) -> list[StatusReport]:
        """A pushed event (``POST /inbound/<instance>`` on ``debsync serve``)."""
        return [status_report(self.receive_event(request.header(SIGNATURE_HEADER), request.body))]

    async def poll(self, sent: Sequence[SentAction]) -> list[StatusReport]:
        """The events of each handed-off case since it was handed off; events without a
        status are kept too (the dossier records them), rejects are logged by poll_case."""
        reports = []
        for handoff in sent:
            result = await self.poll_case(handoff.key, handoff.sent_at)
            reports += [status_report(event) for event in result.events]
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
                    event = event_from_item(item)
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


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(AgencyAction)
