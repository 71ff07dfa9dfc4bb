"""The outbox table as a queue: enqueue under the idempotency key, claim with leases, guarded
transitions that each write their dossier event, and the record of steps taken.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Row

from debsync.clock import local_date
from debsync.decisions import PlannedAction
from debsync.errors import DebsyncError, scrub
from debsync.model import to_minor
from debsync.store import Store
from debsync.store.driver import Compiled, compile_for
from debsync.store.schema import REVIVABLE, ActionState, EventKind, events, outbox
from debsync.sync.rows import insert_many


class OutboxError(DebsyncError):
    """An operator command on the outbox cannot be carried out as asked."""


def worker_id() -> str:
    """Who holds a lease: host, process and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# -- the plan snapshot stored with each row ---------------------------------------------------


def plan_to_json(action: PlannedAction) -> dict[str, Any]:
    """The scheduler's figures as JSON: amounts as strings, dates ISO; the explanation in
    English and as figures (``reasons``) for the console to word in its reader's language."""

    def amount(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "policy": action.policy,
        "template": action.template,
        "language": action.language.value,
        "kind": action.kind.value,
        "currency": action.currency,
        "lines": [
            {
                "invoice_id": line.invoice_id,
                "number": line.number,
                "due_date": line.due_date.isoformat(),
                "days_overdue": line.days_overdue,
                "principal": str(line.principal),
                "interest": amount(line.interest),
                "step": line.step or action.step,
            }
            for line in action.lines
        ],
        "credits": [
            {"invoice_id": c.invoice_id, "number": c.number, "principal": str(c.principal)}
            for c in action.credits
        ],
        "principal": str(action.principal),
        "interest": amount(action.interest),
        "costs": amount(action.costs),
        "announced_costs": amount(action.announced_costs),
        "deadline": action.deadline.isoformat(),
        "notes": list(action.notes),
        "explanation": action.explanation,
        "reasons": [reason.as_json() for reason in action.reasons],  # for other languages
    }


# -- batched lookups ----------------------------------------------------------------------------


def pairs_in(first: Any, second: Any, pairs: Iterable[tuple[str, str]]) -> Any:
    """``(first, second) IN pairs`` as one ``first = ? AND second IN (...)`` per distinct
    first value: SQLite answers a row-value ``IN`` with a scan of the whole table, but this
    form with the ``(instance, ...)`` indexes."""
    grouped: dict[str, list[str]] = {}
    for a, b in pairs:
        grouped.setdefault(a, []).append(b)
    return sa.or_(
        sa.false(),
        *(
            sa.and_(
                first == sa.bindparam(None, a, type_=first.type),
                second.in_(sa.bindparam(None, bs, type_=second.type, expanding=True)),
            )
            for a, bs in grouped.items()
        ),
    )


# -- events -------------------------------------------------------------------------------------


def event_row(
    row: Row[Any] | Mapping[str, Any],
    kind: str,
    now: datetime,
    *,
    invoice_id: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """An ``events`` row about an outbox action, for the debtor's dossier."""
    m = row._mapping if isinstance(row, Row) else row
    return {
        "at": now,
        "instance": m["instance"],
        "debtor_id": m["debtor_id"],
        "invoice_id": invoice_id,
        "kind": kind,
        "run_id": None,
        "data": {"key": m["key"], "step": m["step"], "channel": m["channel"], **data},
    }


# -- enqueue -------------------------------------------------------------------------------------


@dataclass
class EnqueueResult:
    new: list[str]
    revived: list[str]
    existing: int


def _insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(outbox)
    return sqlite.insert(outbox)


def enqueue(store: Store, actions: Sequence[PlannedAction], now: datetime) -> EnqueueResult:
    """Store planned actions; an action whose key exists is left alone, unless it was
    cancelled for a reason that cleared up by itself (then it is planned again)."""
    result = EnqueueResult([], [], 0)
    if not actions:
        return result
    by_key = {a.key: a for a in actions}
    rows = [_new_row(a, now) for a in actions]
    with store.engine.begin() as conn:
        inserted = set(
            conn.execute(
                _insert(conn)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(outbox.c.key),
                rows,
            ).scalars()
        )
        result.new = [a.key for a in actions if a.key in inserted]
        new_events = [
            event_row(row, f"action.{row['state']}", now, invoices=row["invoice_ids"])
            for row in rows
            if row["key"] in inserted
        ]
        others = [k for k in by_key if k not in inserted]
        if others:
            revivable = conn.execute(
                sa.select(outbox).where(
                    outbox.c.key.in_(others),
                    outbox.c.state == ActionState.CANCELLED,
                    outbox.c.cancel_code.in_([c.value for c in REVIVABLE]),
                )
            ).all()
            for old in revivable:
                fresh = _new_row(by_key[old.key], now)
                conn.execute(
                    sa.update(outbox)
                    .where(outbox.c.id == old.id, outbox.c.state == ActionState.CANCELLED)
                    .values(
                        state=fresh["state"],
                        plan=fresh["plan"],
                        planned_on=fresh["planned_on"],
                        cancel_code=None,
                        last_error=None,
                        next_attempt_at=None,
                        updated_at=now,
                    )
                )
                new_events.append(
                    event_row(
                        old,
                        EventKind.ACTION_REVIVED,
                        now,
                        was=old.cancel_code,
                        state=fresh["state"],
                    )
                )
                result.revived.append(old.key)
            result.existing = len(others) - len(revivable)
        if new_events:
            conn.execute(sa.insert(events), new_events)
    return result


def _new_row(action: PlannedAction, now: datetime) -> dict[str, Any]:
    return {
        "key": action.key,
        "instance": action.instance,
        "debtor_id": action.debtor_id,
        "step": action.step,
        "channel": action.channel,
        "role": action.role,
        "legal_copy": action.legal_copy,
        "requires_approval": action.requires_approval,
        "state": ActionState.AWAITING_APPROVAL if action.requires_approval else ActionState.PLANNED,
        "invoice_ids": [line.invoice_id for line in action.lines],
        "plan": plan_to_json(action),
        "planned_on": local_date(now),
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


# -- claiming and leases ------------------------------------------------------------------------


def _claimable_by_state(now: datetime, routes: Collection[tuple[str, str]]) -> list[Any]:
    """Rows a worker may take now, one condition per state: due, unleased, and served by a
    configured action. Each alone is a range of the ``(state, id)`` index in id order."""
    unleased = sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now)
    served = sa.tuple_(outbox.c.instance, outbox.c.channel).in_(list(routes))
    retry_due = outbox.c.next_attempt_at <= now
    return [
        sa.and_(outbox.c.state == ActionState.PLANNED, unleased, served),
        sa.and_(outbox.c.state == ActionState.APPROVED, unleased, served),
        sa.and_(outbox.c.state == ActionState.FAILED, retry_due, unleased, served),
        # in doubt: only where the channel deduplicates (declared idempotent)
        sa.and_(
            outbox.c.state == ActionState.IN_DOUBT,
            retry_due,
            outbox.c.idempotent.is_(True),
            unleased,
            served,
        ),
    ]


def claimable(now: datetime, routes: Collection[tuple[str, str]]) -> Any:
    """Rows a worker may take now: due, unleased, and served by a configured action."""
    return sa.or_(*_claimable_by_state(now, routes))


def claim(
    store: Store,
    owner: str,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    routes: Collection[tuple[str, str]],
) -> list[Row[Any]]:
    """Lease up to ``limit`` due rows for ``owner``, oldest first.

    On SQLite, the oldest ``limit`` of each claimable state and then the oldest ``limit`` of
    those: each state's rows come off the ``(state, id)`` index in id order, where one query
    over all states sorted every due row (27 ms a claim with 50,000 due, now 3-5 ms).
    PostgreSQL's planner needs no such help, and locks what it picks (``SKIP LOCKED``)."""
    if not routes:
        return []
    if store.engine.dialect.name == "postgresql":
        first = (
            sa.select(outbox.c.id)
            .where(claimable(now, routes))
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    else:
        oldest = [
            sa.select(outbox.c.id).where(due).order_by(outbox.c.id).limit(limit).subquery()
            for due in _claimable_by_state(now, routes)
        ]
        picked = sa.union_all(*(sa.select(each.c.id) for each in oldest)).subquery()
        first = sa.select(picked.c.id).order_by(picked.c.id).limit(limit)
    with store.engine.begin() as conn:
        claimed = conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(first.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(*_CLAIMED)
        ).all()
    return sorted(claimed, key=lambda r: r.id)


_CLAIMED = [
    c
    for c in outbox.c
    if c.name
    not in (
        "payload",
        "payload_sha256",
        "receipt",
        "provider_id",
        "dispatched_on",
        "cancel_code",
        "last_error",
        "next_attempt_at",
        "created_at",
        "updated_at",
    )
]
"""What sending a claimed row reads of it: not the outcome of an earlier attempt (its payload
is rendered again, its outcome written anew), nor the row's bookkeeping times."""


def release(store: Store, row_ids: Iterable[int], owner: str) -> None:
    """Give leased rows back untouched (their channel is unavailable this run)."""
    ids = list(row_ids)
    if not ids:
        return
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(ids), outbox.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


def sweep(store: Store, now: datetime) -> list[str]:
    """Rows left ``sending`` by a worker whose lease expired: the worker died between
    handing the message to the channel and recording the outcome. They are in doubt."""
    with store.engine.begin() as conn:
        stuck = conn.execute(
            sa.select(outbox).where(
                outbox.c.state == ActionState.SENDING, outbox.c.lease_until < now
            )
        ).all()
        moved = []
        for row in stuck:
            if move(
                conn,
                row,
                ActionState.IN_DOUBT,
                now,
                from_states=(ActionState.SENDING,),
                reason="the worker stopped while sending; the outcome is unknown",
                values={"lease_owner": None, "lease_until": None, "next_attempt_at": now},
            ):
                moved.append(row.key)
    return moved


@functools.lru_cache(maxsize=64)
def _move_statement(
    dialect: Dialect, from_states: tuple[ActionState, ...], owned: bool, keys: tuple[str, ...]
) -> Compiled:
    """The guarded UPDATE for one set of expected states and columns, compiled once: the
    outbox's hot path runs it twice per action, and run through the driver it skips Core's
    per-statement cache lookup and per-row parameter machinery."""
    where = [
        outbox.c.id == sa.bindparam("g_id"),
        sa.or_(*(outbox.c.state == s for s in from_states)),
    ]
    if owned:
        where.append(outbox.c.lease_owner == sa.bindparam("g_owner"))
    statement = sa.update(outbox).where(*where)
    return compile_for(statement, dialect, {"g_id", "g_owner", *keys}, column_keys=list(keys))


class Transition(NamedTuple):
    """One row's part in a transition: columns to set besides the state, and event data."""

    row: Row[Any]
    values: Mapping[str, Any]
    event: Mapping[str, Any]


_TEXTS = ("last_error", "error", "reason")
"""The columns and event keys that hold an error text or a person's reason."""


def _scrubbed(values: Mapping[str, Any]) -> Mapping[str, Any]:
    """``values`` with its error texts scrubbed (:func:`debsync.errors.scrub`): a provider's
    refusal or a person's reason may quote an address, and the outbox stores it for years."""
    for text in _TEXTS:  # a loop, not any(): this runs twice per row moved
        if isinstance(values.get(text), str):
            break
    else:
        return values
    return {k: scrub(v) if k in _TEXTS and isinstance(v, str) else v for k, v in values.items()}


def move_many(
    conn: Connection,
    to: ActionState,
    now: datetime,
    transitions: Sequence[Transition],
    *,
    from_states: Sequence[ActionState],
    owner: str | None = None,
) -> list[Row[Any]]:
    """The same transition for many rows in one statement, each guarded by the expected
    states (and the lease owner), each recorded as an ``action.<state>`` event. Returns the
    rows that moved; a row another worker or a person changed first is left out. The values
    of all transitions must set the same columns."""
    if not transitions:
        return []
    guard = {"g_owner": owner} if owner is not None else {}
    params = [
        {"g_id": t.row.id, **guard, "state": str(to), "updated_at": now, **_scrubbed(t.values)}
        for t in transitions
    ]
    keys = tuple(k for k in params[0] if k not in guard and k != "g_id")
    statement = _move_statement(conn.dialect, tuple(from_states), owner is not None, keys)
    moved = list(transitions)
    done = conn.exec_driver_sql(statement.sql, [statement.params(p) for p in params])
    if done.rowcount != len(transitions):  # someone was first: find out which rows moved
        ids = [t.row.id for t in transitions]
        states = dict(
            conn.execute(sa.select(outbox.c.id, outbox.c.state).where(outbox.c.id.in_(ids)))
        )
        # ``to`` is never among the expected states, so a row in it now is one we moved
        moved = [t for t in transitions if states.get(t.row.id) == to]
    if moved:
        insert_many(
            conn,
            events,
            [event_row(t.row, f"action.{to.value}", now, **_scrubbed(t.event)) for t in moved],
        )
    return [t.row for t in moved]


def move(
    conn: Connection,
    row: Row[Any],
    to: ActionState,
    now: datetime,
    *,
    from_states: Sequence[ActionState],
    owner: str | None = None,
    values: Mapping[str, Any] | None = None,
    **event_data: Any,
) -> bool:
    """One transition (see :func:`move_many`); ``False`` when someone changed the row first."""
    moved = move_many(
        conn,
        to,
        now,
        [Transition(row, values or {}, event_data)],
        from_states=from_states,
        owner=owner,
    )
    return bool(moved)


class StepTaken(NamedTuple):
    """An action dispatched on ``sent_on`` over ``invoice_ids`` (see :func:`record_steps`)."""

    row: Row[Any]
    invoice_ids: Sequence[str]
    sent_on: date
    received_on: date | None
    stated_costs_minor: int | None


@functools.lru_cache(maxsize=64)
def _steps_taken(dialect: Dialect, count: int) -> tuple[Compiled, Callable[[Any], Any] | None]:
    """The steps already taken among ``count`` invoices of one instance (by the index), and
    the processor of its JSON column: compiled once per dialect and count, because every
    batch the outbox records runs it and Core renders an expanding IN anew each time."""
    statement = sa.select(events.c.invoice_id, events.c.data).where(
        events.c.instance == sa.bindparam("s_instance"),
        events.c.invoice_id.in_([sa.bindparam(f"s_{n}") for n in range(count)]),
        events.c.kind == EventKind.STEP_SENT,
    )
    given = {"s_instance", *(f"s_{n}" for n in range(count))}
    data = events.c.data.type.dialect_impl(dialect).result_processor(dialect, None)
    return compile_for(statement, dialect, given), data


def record_steps(conn: Connection, taken: Sequence[StepTaken], now: datetime) -> int:
    """Write ``step.sent`` for each invoice that has none yet for its own step: a step is
    taken once, by the first channel that delivers it (for a veertiendagenbrief, only by its
    legal copy, whose receipt starts the term). An invoice named in a message at a higher
    step than its own (one message per debtor and channel) records its own step, without
    the higher step's role. One query and one insert for the whole batch; returns the number
    of steps written."""
    wanted = [(t.row.instance, i) for t in taken for i in t.invoice_ids]
    if not wanted:
        return 0
    per_instance: dict[str, list[str]] = {}
    for instance, invoice_id in wanted:
        per_instance.setdefault(instance, []).append(invoice_id)
    already = set()
    for instance, invoices in per_instance.items():
        query, load = _steps_taken(conn.dialect, len(invoices))
        bound = {"s_instance": instance, **{f"s_{n}": i for n, i in enumerate(invoices)}}
        for invoice_id, data in conn.exec_driver_sql(query.sql, query.params(bound)):
            step = (load(data) if load else data).get("step")
            already.add((instance, invoice_id, step))
    fresh = []
    for t in taken:
        own = {line["invoice_id"]: line.get("step") for line in t.row.plan.get("lines", ())}
        for invoice_id in t.invoice_ids:
            step = own.get(invoice_id) or t.row.step
            at_step = step == t.row.step
            if at_step and t.row.role == "wik_notice" and not t.row.legal_copy:
                continue
            key = (t.row.instance, invoice_id, step)
            if key in already:
                continue
            already.add(key)
            fresh.append(
                event_row(
                    t.row,
                    EventKind.STEP_SENT,
                    now,
                    invoice_id=invoice_id,
                    role=t.row.role if at_step else None,
                    sent_on=t.sent_on.isoformat(),
                    received_on=t.received_on.isoformat() if t.received_on and at_step else None,
                    stated_costs_minor=t.stated_costs_minor if at_step else None,
                    **({} if at_step else {"step": step, "named_in_step": t.row.step}),
                )
            )
    insert_many(conn, events, fresh)
    return len(fresh)


# -- reading --------------------------------------------------------------------------------


def find(store: Store, key_prefix: str) -> Row[Any]:
    """The row whose key starts with ``key_prefix`` (at least 6 characters, unambiguous)."""
    prefix = key_prefix.strip().lower()
    if len(prefix) < 6:
        raise OutboxError("give at least 6 characters of the action id")
    with store.engine.connect() as conn:
        found = conn.execute(
            sa.select(outbox).where(outbox.c.key.startswith(prefix, autoescape=True)).limit(2)
        ).all()
    if not found:
        raise OutboxError(f"no action {prefix!r} in the outbox")
    if len(found) > 1:
        raise OutboxError(f"action id {prefix!r} is ambiguous; give more characters")
    return found[0]


def rows(
    store: Store, *, states: Collection[str] = (), instance: str | None = None
) -> list[Row[Any]]:
    query = sa.select(outbox).order_by(outbox.c.id)
    if states:
        query = query.where(outbox.c.state.in_(list(states)))
    if instance:
        query = query.where(outbox.c.instance == instance)
    with store.engine.connect() as conn:
        return list(conn.execute(query).all())


def counts(store: Store) -> dict[str, int]:
    """Rows per state, for ``debsync status``."""
    with store.engine.connect() as conn:
        return {
            str(state): int(n)
            for state, n in conn.execute(
                sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
            )
        }


ReceiptRule = Callable[[Row[Any], date], date | None]
"""``(row, dispatched_on) -> presumed receipt`` for a legal copy (None for other rows)."""


def stated_costs(row: Row[Any]) -> int | None:
    """The collection costs a veertiendagenbrief stated, in minor units."""
    announced = row.plan.get("announced_costs")
    return None if announced is None else to_minor(Decimal(announced), row.plan["currency"])


def payload_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 of a payload's canonical JSON: what the dossier keeps as proof of content."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
