"""The call queue: open call tasks and what came of them.

A call task is an outbox action on the ``call`` channel that was sent (filed); it is open until
its outcome is recorded as a ``call.completed`` event. A promise to pay pauses the task's
invoices until the promised date (plus the policy's grace), a dispute until ``debsync resume``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from debsync.call_outcomes import Outcome
from debsync.clock import Clock, system_clock
from debsync.facts import Pause, PauseKind
from debsync.outbox.table import OutboxError, event_row, find
from debsync.pauses import start_pause
from debsync.store import Store
from debsync.store.schema import ActionState, EventKind, events, outbox


@dataclass(frozen=True)
class CallTask:
    """An open call: the outbox row's payload plus the debtor's last contacts."""

    key: str
    instance: str
    debtor_id: str
    step: str
    filed_on: date
    payload: dict[str, Any]
    last_contacts: list[tuple[str, str, str]]  # (date, step, channel)


def open_calls(store: Store, *, contacts: int = 3) -> list[CallTask]:
    """Filed call tasks without a recorded outcome, oldest first."""
    with store.engine.connect() as conn:
        done_keys = _completed(conn)
        tasks = [
            r
            for r in conn.execute(
                sa.select(outbox)
                .where(outbox.c.channel == "call", outbox.c.state == ActionState.SENT)
                .order_by(outbox.c.dispatched_on, outbox.c.id)
            )
            if r.key not in done_keys
        ]
        return [_task(conn, row, contacts) for row in tasks]


def _completed(conn: sa.Connection) -> set[str]:
    """Keys of call tasks whose outcome is recorded."""
    return {
        data["key"]
        for data in conn.execute(
            sa.select(events.c.data).where(events.c.kind == EventKind.CALL_COMPLETED)
        ).scalars()
    }


def _task(conn: sa.Connection, row: Row[Any], contacts: int) -> CallTask:
    recent = conn.execute(
        sa.select(outbox.c.dispatched_on, outbox.c.step, outbox.c.channel)
        .where(
            outbox.c.instance == row.instance,
            outbox.c.debtor_id == row.debtor_id,
            outbox.c.dispatched_on.is_not(None),
            outbox.c.id != row.id,
        )
        .order_by(outbox.c.dispatched_on.desc(), outbox.c.id.desc())
        .limit(contacts)
    ).all()
    return CallTask(
        key=row.key,
        instance=row.instance,
        debtor_id=row.debtor_id,
        step=row.step,
        filed_on=row.dispatched_on,
        payload=row.payload or {},
        last_contacts=[(d.isoformat(), step, channel) for d, step, channel in recent],
    )


def complete(
    store: Store,
    key_prefix: str,
    outcome: Outcome,
    *,
    author: str,
    promise_date: date | None = None,
    note: str | None = None,
    clock: Clock = system_clock,
) -> list[Pause]:
    """Record a call's outcome; a promise or a dispute pauses the task's invoices."""
    row = find(store, key_prefix)
    if row.channel != "call" or row.state != ActionState.SENT:
        raise OutboxError(f"action {row.key} is not a filed call task")
    if outcome is Outcome.PROMISED and promise_date is None:
        raise OutboxError("a promise needs --promise-date")
    now: datetime = clock()
    with store.engine.begin() as conn:
        if row.key in _completed(conn):
            raise OutboxError(f"call {row.key} already has an outcome")
        conn.execute(
            sa.insert(events).values(
                **event_row(
                    row,
                    EventKind.CALL_COMPLETED,
                    now,
                    outcome=outcome.value,
                    promise_date=promise_date.isoformat() if promise_date else None,
                    note=note,
                    author=author,
                )
            )
        )
    if outcome not in (Outcome.PROMISED, Outcome.DISPUTED):
        return []
    kind = PauseKind.PROMISE if outcome is Outcome.PROMISED else PauseKind.DISPUTE
    reason = note or f"{outcome.value} on the phone (call {row.key[:12]})"
    return [
        start_pause(
            store,
            kind=kind,
            instance=row.instance,
            scope="invoice",
            target=invoice_id,
            reason=reason,
            author=author,
            until=promise_date,
            clock=clock,
        )
        for invoice_id in row.invoice_ids
    ]
