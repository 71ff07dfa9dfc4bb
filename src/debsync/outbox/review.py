"""A person's decisions on the outbox: approve, reject, cancel, resend, confirm, record a
letter's posting; and what waits for them (``debsync status``, ``debsync outbox review``).

Each decision is one guarded transition (the row must still be in the state the person saw)
and an event with the author in the debtor's dossier.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from debsync.clock import local_date
from debsync.outbox.table import (
    OutboxError,
    ReceiptRule,
    StepTaken,
    event_row,
    find,
    move,
    record_steps,
    stated_costs,
)
from debsync.store import Store
from debsync.store.schema import OPEN_STATES, ActionState, CancelCode, EventKind, events, outbox


def _decide(
    store: Store,
    key_prefix: str,
    to: ActionState,
    now: datetime,
    *,
    from_states: Sequence[ActionState],
    verb: str,
    values: Mapping[str, Any] | None = None,
    **event_data: Any,
) -> Row[Any]:
    row = find(store, key_prefix)
    if row.state not in from_states:
        allowed = ", ".join(s.value for s in from_states)
        raise OutboxError(
            f"action {row.key} is {row.state}; only an action that is {allowed} can be {verb}"
        )
    with store.engine.begin() as conn:
        if not move(conn, row, to, now, from_states=from_states, values=values, **event_data):
            raise OutboxError(f"action {row.key} changed meanwhile; look again")
    return row


def approve(store: Store, key_prefix: str, author: str, now: datetime) -> Row[Any]:
    """Approve an action that waits for approval (or one rejected earlier)."""
    row = find(store, key_prefix)
    from_states: tuple[ActionState, ...] = (ActionState.AWAITING_APPROVAL,)
    if row.state == ActionState.CANCELLED and row.cancel_code == CancelCode.REJECTED:
        from_states = (ActionState.CANCELLED,)
    return _decide(
        store,
        key_prefix,
        ActionState.APPROVED,
        now,
        from_states=from_states,
        verb="approved",
        values={"cancel_code": None},
        author=author,
    )


def reject(store: Store, key_prefix: str, author: str, reason: str, now: datetime) -> Row[Any]:
    return _decide(
        store,
        key_prefix,
        ActionState.CANCELLED,
        now,
        from_states=(ActionState.AWAITING_APPROVAL, ActionState.APPROVED),
        verb="rejected",
        values={"cancel_code": CancelCode.REJECTED, "last_error": reason},
        code=CancelCode.REJECTED.value,
        author=author,
        reason=reason,
    )


def cancel(store: Store, key_prefix: str, author: str, reason: str, now: datetime) -> Row[Any]:
    return _decide(
        store,
        key_prefix,
        ActionState.CANCELLED,
        now,
        from_states=(
            ActionState.PLANNED,
            ActionState.AWAITING_APPROVAL,
            ActionState.APPROVED,
            ActionState.FAILED,
            ActionState.DEAD,
            ActionState.IN_DOUBT,
        ),
        verb="cancelled",
        values={"cancel_code": CancelCode.MANUAL, "last_error": reason},
        code=CancelCode.MANUAL.value,
        author=author,
        reason=reason,
    )


def resend(store: Store, key_prefix: str, author: str, now: datetime) -> Row[Any]:
    """A person checked an in-doubt (or dead, or refused) action and wants it sent (again)."""
    row = find(store, key_prefix)
    from_states: tuple[ActionState, ...] = (
        ActionState.IN_DOUBT,
        ActionState.DEAD,
        ActionState.FAILED,
    )
    if row.state == ActionState.CANCELLED and row.cancel_code == CancelCode.REFUSED:
        from_states = (ActionState.CANCELLED,)
    next_state = ActionState.APPROVED if row.requires_approval else ActionState.PLANNED
    return _decide(
        store,
        key_prefix,
        next_state,
        now,
        from_states=from_states,
        verb="sent again",
        values={"cancel_code": None, "next_attempt_at": None, "attempts": 0},
        author=author,
        was=row.state,
    )


def confirm(
    store: Store, key_prefix: str, author: str, now: datetime, receipt: ReceiptRule
) -> Row[Any]:
    """A person checked that an in-doubt action did reach the debtor: it counts as sent,
    dispatched on the day it was being sent."""
    row = find(store, key_prefix)
    if row.state != ActionState.IN_DOUBT:
        raise OutboxError(f"action {row.key} is {row.state}; only an in-doubt action is confirmed")
    sent_on = local_date(row.updated_at)
    with store.engine.begin() as conn:
        if not move(
            conn,
            row,
            ActionState.SENT,
            now,
            from_states=(ActionState.IN_DOUBT,),
            values={"dispatched_on": sent_on},
            author=author,
            confirmed=True,
        ):
            raise OutboxError(f"action {row.key} changed meanwhile; look again")
        record_steps(
            conn,
            [StepTaken(row, row.invoice_ids, sent_on, receipt(row, sent_on), stated_costs(row))],
            now,
        )
    return row


def mark_posted(
    store: Store,
    key_prefix: str,
    posted_on: date,
    author: str,
    now: datetime,
    receipt: ReceiptRule,
) -> Row[Any]:
    """A person posted a printed letter on ``posted_on``: it is dispatched, its step is taken,
    and for a veertiendagenbrief the presumed receipt (and so the term) counts from that day."""
    row = find(store, key_prefix)
    if row.channel != "letter" or row.state != ActionState.SENT or row.dispatched_on is not None:
        raise OutboxError(f"action {row.key} is not a printed letter waiting to be posted")
    if posted_on < row.planned_on:
        raise OutboxError(f"{posted_on} is before the letter was planned ({row.planned_on})")
    with store.engine.begin() as conn:
        done = conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == row.id, outbox.c.dispatched_on.is_(None))
            .values(dispatched_on=posted_on, updated_at=now)
        )
        if done.rowcount != 1:
            raise OutboxError(f"action {row.key} changed meanwhile; look again")
        received_on = receipt(row, posted_on)
        conn.execute(
            sa.insert(events).values(
                **event_row(
                    row,
                    EventKind.LETTER_POSTED,
                    now,
                    posted_on=posted_on.isoformat(),
                    received_on=received_on.isoformat() if received_on else None,
                    author=author,
                )
            )
        )
        record_steps(
            conn,
            [StepTaken(row, row.invoice_ids, posted_on, received_on, stated_costs(row))],
            now,
        )
    return row


@dataclass
class ReviewRow:
    key: str
    instance: str
    debtor_id: str
    step: str
    channel: str
    state: str
    error: str | None


@dataclass
class OutboxStatus:
    """Actions per state; those that need a person (dead, in doubt); open actions that wait
    because no ``[actions]`` instance carries their channel."""

    counts: dict[str, int] = field(default_factory=dict)
    review: list[ReviewRow] = field(default_factory=list)
    unrouted: dict[str, int] = field(default_factory=dict)


def outbox_status(store: Store, routes: Collection[tuple[str, str]]) -> OutboxStatus:
    with store.engine.connect() as conn:
        status = OutboxStatus()
        for instance, channel, state, n in conn.execute(
            sa.select(
                outbox.c.instance, outbox.c.channel, outbox.c.state, sa.func.count()
            ).group_by(outbox.c.instance, outbox.c.channel, outbox.c.state)
        ):
            status.counts[state] = status.counts.get(state, 0) + n
            if state in OPEN_STATES and (instance, channel) not in routes:
                status.unrouted[channel] = status.unrouted.get(channel, 0) + n
        status.review = [
            ReviewRow(r.key, r.instance, r.debtor_id, r.step, r.channel, r.state, r.last_error)
            for r in conn.execute(
                sa.select(outbox)
                .where(outbox.c.state.in_((ActionState.DEAD, ActionState.IN_DOUBT)))
                .order_by(outbox.c.id)
            )
        ]
    return status
