"""Agency status events: the wire format an agency pushes or is polled for, parsed strictly
into :class:`AgencyEvent`, and what the core files in the dossier from them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

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

from debsync.actions.base import InboundError, StatusReport
from debsync.actions.http import safe_code
from debsync.model import Currency


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


def event_from_item(item: object) -> AgencyEvent:
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
    return event_from_item(item)


FINAL = frozenset({AgencyStatus.REJECTED, AgencyStatus.CLOSED})


def status_report(event: AgencyEvent) -> StatusReport:
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


def case_of(response: httpx.Response) -> AgencyCase | None:
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
