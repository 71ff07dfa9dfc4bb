"""A debtor's dossier: the full timeline, read from the append-only ``events`` table.

Everything debsync learnt or did about a debtor is an event: syncs that opened, changed or
closed invoices, payments, every outbox transition of every action (with the SHA-256 of what
was handed to the channel), steps taken, pauses, promises, disputes, call outcomes, letters
posted, delivery and agency reports. The dossier is therefore evidence, not a summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from debsync.formatting import money, short_date
from debsync.model import from_minor
from debsync.policy import CHANNELS
from debsync.store import Store
from debsync.store.schema import EventKind, debtors, events, invoices, outbox


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str
    invoice_id: str | None
    summary: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Dossier:
    instance: str
    debtor: dict[str, Any]
    invoices: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    entries: list[Entry]


class DossierError(LookupError):
    pass


def load_dossier(store: Store, instance: str, debtor_id: str) -> Dossier:
    with store.engine.connect() as conn:
        debtor = conn.execute(
            sa.select(debtors).where(
                debtors.c.instance == instance, debtors.c.external_id == debtor_id
            )
        ).first()
        if debtor is None:
            raise DossierError(f"no debtor {debtor_id!r} in instance {instance!r}")
        invoice_rows = conn.execute(
            sa.select(invoices)
            .where(invoices.c.instance == instance, invoices.c.debtor_id == debtor_id)
            .order_by(invoices.c.due_date, invoices.c.number)
        ).all()
        numbers = {r.external_id: r.number for r in invoice_rows}
        action_rows = conn.execute(
            sa.select(outbox)
            .where(outbox.c.instance == instance, outbox.c.debtor_id == debtor_id)
            .order_by(outbox.c.id)
        ).all()
        entries = [
            Entry(r.at, r.kind, r.invoice_id, _summary(r.kind, r.data, numbers), dict(r.data))
            for r in conn.execute(
                sa.select(events)
                .where(events.c.instance == instance, events.c.debtor_id == debtor_id)
                .order_by(events.c.id)
            )
        ]
    return Dossier(
        instance=instance,
        debtor={
            "external_id": debtor.external_id,
            "name": debtor.name,
            "kind": debtor.kind,
            "language": debtor.language,
            "emails": debtor.emails,
            "phones": debtor.phones,
            "address": debtor.address,
            "kvk": debtor.kvk,
            "vat": debtor.vat,
        },
        invoices=[
            {
                "id": r.external_id,
                "number": r.number,
                "issue_date": r.issue_date.isoformat(),
                "due_date": r.due_date.isoformat(),
                "currency": r.currency,
                "total": str(from_minor(r.total_minor, r.currency)),
                "open": str(from_minor(r.open_minor, r.currency)),
                "state": r.state,
            }
            for r in invoice_rows
        ],
        actions=[
            {
                "key": r.key,
                "step": r.step,
                "channel": r.channel,
                "state": r.state,
                "invoices": [numbers.get(i, i) for i in r.invoice_ids],
                "planned_on": r.planned_on.isoformat(),
                "dispatched_on": r.dispatched_on.isoformat() if r.dispatched_on else None,
                "attempts": r.attempts,
                "provider_id": r.provider_id,
                "payload_sha256": r.payload_sha256,
                "content_sha256": (r.receipt or {}).get("content_sha256"),
                "payload": r.payload,
                "error": r.last_error,
            }
            for r in action_rows
        ],
        entries=entries,
    )


def _money(data: dict[str, Any], key: str) -> str:
    """An event's amount as the operator reads it (``€ 3.615,57``); stored data an older
    version wrote differently is shown as it is."""
    value, currency = data.get(key), data.get("currency") or "EUR"
    try:
        return money(Decimal(str(value)), str(currency))
    except (InvalidOperation, ValueError, TypeError):
        return f"{currency} {value}"


def _day(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    try:
        return short_date(date.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _summary(kind: str, data: dict[str, Any], numbers: dict[str, str]) -> str:
    """One line for a person; the full event data stays in ``Entry.data``."""
    number = data.get("number") or ""
    step = data.get("step", "")
    channel = data.get("channel", "")
    if kind.startswith("action."):
        state = kind.removeprefix("action.")
        extra = data.get("reason") or data.get("error") or ""
        digest = data.get("payload_sha256")
        if digest:
            extra = f"payload sha256 {digest[:16]}…"
        return f"{step} by {channel}: {state.replace('_', ' ')}" + (f" ({extra})" if extra else "")
    texts: dict[str, str] = {
        EventKind.DEBTOR_CREATED: "debtor record created",
        EventKind.DEBTOR_CHANGED: "debtor record changed",
        EventKind.INVOICE_OPENED: f"invoice {number} opened: due {_day(data, 'due_date')}, "
        f"open {_money(data, 'open')}",
        EventKind.INVOICE_PARTIALLY_PAID: f"{_money(data, 'paid')} paid, "
        f"open now {_money(data, 'open')}",
        EventKind.INVOICE_CHANGED: f"open amount changed from {_money(data, 'open_before')} "
        f"to {_money(data, 'open')}",
        EventKind.INVOICE_CLOSED: f"invoice {number} closed ({data.get('reason')}); "
        f"{_money(data, 'paid')} recorded as paid",
        EventKind.INVOICE_REOPENED: f"invoice reopened with {_money(data, 'open')} open",
        EventKind.PAYMENT_RECORDED: f"payment of {_money(data, 'amount')} "
        f"on {_day(data, 'paid_on')}",
        EventKind.STEP_SENT: f"step {step} taken on {_day(data, 'sent_on')}"
        + (f", presumed received {_day(data, 'received_on')}" if data.get("received_on") else ""),
        EventKind.STEP_RECORDED_ELSEWHERE: f"step {step} recorded in {data.get('source')} "
        f"on {_day(data, 'sent_on')}",
        EventKind.PAUSE_STARTED: f"{data.get('kind')} pause {data.get('id')} by "
        f"{data.get('author')}: {data.get('reason')}"
        + (f" (until {_day(data, 'until')})" if data.get("until") else ""),
        EventKind.PAUSE_ENDED: f"pause {data.get('id')} ended by {data.get('author')}: "
        f"{data.get('reason')}",
        EventKind.CALL_COMPLETED: f"call outcome {data.get('outcome')}"
        + (f", promised for {_day(data, 'promise_date')}" if data.get("promise_date") else "")
        + (f": {data['note']}" if data.get("note") else ""),
        EventKind.LETTER_POSTED: f"letter posted on {_day(data, 'posted_on')}",
    }
    channel, _, status = kind.partition(".")
    if kind not in texts and channel in CHANNELS and status:  # a provider's report
        payment = data.get("payment") or {}
        paid = f" ({_money(payment, 'amount')})" if payment else ""
        return f"{channel} provider reports {status.replace('_', ' ')}{paid}"
    return texts.get(kind, kind)
