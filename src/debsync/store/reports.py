"""Read-only reports over the store: what ``debsync status`` shows.

Aging is computed in SQL with date bounds bound as parameters, so the same query runs on
SQLite and PostgreSQL and stays fast for a hundred thousand open invoices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from debsync.model import DebtorKind, from_minor
from debsync.store import Store
from debsync.store.schema import (
    connector_state,
    debtors,
    events,
    invoices,
    sync_rejects,
    sync_runs,
)

AGING_BUCKETS = ("not_due", "0-30", "31-60", "61-90", ">90")
"""Days past due: ``not_due`` is due today or later; ``0-30`` is 1 to 30 days past due."""


@dataclass
class CurrencyTotals:
    open_invoices: int = 0
    open_amount: Decimal = Decimal(0)
    overdue_amount: Decimal = Decimal(0)
    aging: dict[str, Decimal] = field(default_factory=dict)
    aging_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class RejectRow:
    kind: str
    ref: str
    reason: str
    dropped: bool


@dataclass
class InstanceStatus:
    instance: str
    type: str | None
    open_invoices: int = 0
    totals: dict[str, CurrencyTotals] = field(default_factory=dict)
    last_sync: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str | None = None
    last_run_status: str | None = None
    next_sync: datetime | None = None
    """When the daemon next syncs it (:mod:`debsync.schedule`); None: at once, or never ran."""
    failures: int = 0
    """Failed syncs in a row: the daemon backs off this instance."""
    rejects: list[RejectRow] = field(default_factory=list)
    unknown_kind: list[str] = field(default_factory=list)
    """Ids of debtors with open invoices whose kind is unknown (see :func:`unknown_kinds`)."""


def _aging(conn: sa.Connection, today: date) -> dict[tuple[str, str], dict[str, tuple[int, int]]]:
    """Per (instance, currency) and aging bucket: how many open invoices and their open
    minor units, one grouped pass per instance (the instances are read from the index).
    Grouping by (currency, bucket) within one instance is about a third cheaper on SQLite
    than grouping the whole table by (instance, currency, bucket)."""
    due = invoices.c.due_date
    d30, d60, d90 = (today - timedelta(days=n) for n in (30, 60, 90))
    bucket = sa.case(
        (due >= today, AGING_BUCKETS[0]),
        (due >= d30, AGING_BUCKETS[1]),
        (due >= d60, AGING_BUCKETS[2]),
        (due >= d90, AGING_BUCKETS[3]),
        else_=AGING_BUCKETS[4],
    ).label("bucket")
    found: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
    for name in conn.execute(sa.select(invoices.c.instance).distinct()).scalars():
        for currency, where, n, minor in conn.execute(
            sa.select(
                invoices.c.currency,
                bucket,
                sa.func.count(),
                sa.func.sum(invoices.c.open_minor),
            )
            .where(whole_instance(conn, name), invoices.c.state == "open")
            .group_by(invoices.c.currency, bucket)
        ):
            found.setdefault((name, currency), {})[where] = (int(n), int(minor or 0))
    return found


def whole_instance(conn: sa.Connection, instance: str) -> sa.ColumnElement[bool]:
    """All of an instance's invoices. SQLite keeps no statistics, so it would walk the
    (instance, state, due date) index and fetch every row through it, four times slower than
    reading the table once; an expression on the column keeps it to the table. A SQLite
    store holds one company's books, where the instance is most of the table; PostgreSQL's
    planner knows better than a hint and is left to choose."""
    if conn.dialect.name == "sqlite":
        return sa.func.coalesce(invoices.c.instance, "") == instance
    return invoices.c.instance == instance


def of_debtors(
    table: sa.Table, refs: Iterable[tuple[str, str]], column: str = "debtor_id"
) -> sa.ColumnElement[bool]:
    """The rows of some ``(instance, debtor id)`` pairs, one ``IN`` per instance: SQLite
    answers that from the (instance, debtor) index, a row-value ``IN`` by reading the table."""
    by_instance: dict[str, set[str]] = {}
    for instance, debtor_id in refs:
        by_instance.setdefault(instance, set()).add(debtor_id)
    return sa.or_(
        sa.false(),
        *(
            sa.and_(table.c.instance == instance, table.c[column].in_(sorted(ids)))
            for instance, ids in sorted(by_instance.items())
        ),
    )


OPEN_OFF_INDEX = sa.func.coalesce(invoices.c.state, "") == "open"
"""An invoice is open, tested as an expression, for a query narrowed otherwise (some debtors,
one invoice): on the indexed column SQLite would pick the (instance, state, due date) index
and walk every open invoice of the instance instead of the few rows asked for."""


def book_version(store: Store) -> tuple[int | None, int | None]:
    """The newest event and the newest sync run. Every change to the books writes one of
    them (the sync writer records each opened, changed and paid invoice as an event; pauses,
    call outcomes and outbox transitions are events; a sync that found nothing new still
    records its run), so while both stay the same, what was computed from the books holds.
    Two index lookups."""
    with store.engine.connect() as conn:
        event, run = conn.execute(
            sa.select(
                sa.select(sa.func.max(events.c.id)).scalar_subquery(),
                sa.select(sa.func.max(sync_runs.c.id)).scalar_subquery(),
            )
        ).one()
    return event, run


def instance_status(store: Store, instances: dict[str, str], today: date) -> list[InstanceStatus]:
    """Status per configured instance (name → type), plus instances only the store knows."""
    with store.engine.connect() as conn:
        states = {row.instance: row for row in conn.execute(sa.select(connector_state))}
        runs = {
            row.id: row
            for row in conn.execute(
                sa.select(sync_runs.c.id, sync_runs.c.status).where(
                    sync_runs.c.id.in_([s.last_run_id for s in states.values() if s.last_run_id])
                )
            )
        }
        aggregates = _aging(conn, today)
        result: dict[str, InstanceStatus] = {
            name: InstanceStatus(instance=name, type=type_name)
            for name, type_name in instances.items()
        }
        for name, state in states.items():
            status = result.setdefault(name, InstanceStatus(instance=name, type=state.type))
            status.last_sync = state.last_success_at
            status.last_attempt = state.last_attempt_at
            status.last_error = state.last_error
            status.next_sync, status.failures = state.next_sync_at, state.failures
            if state.last_run_id in runs:
                status.last_run_status = runs[state.last_run_id].status
                status.rejects = [
                    RejectRow(r.kind, r.ref, r.reason, r.dropped)
                    for r in conn.execute(
                        sa.select(sync_rejects)
                        .where(sync_rejects.c.run_id == state.last_run_id)
                        .order_by(sync_rejects.c.id)
                    )
                ]
        for name, ids in _unknown_kinds(conn).items():
            result.setdefault(name, InstanceStatus(instance=name, type=None)).unknown_kind = ids
        for (name, currency), by_bucket in sorted(aggregates.items()):
            status = result.setdefault(name, InstanceStatus(instance=name, type=None))
            counts = {b: by_bucket.get(b, (0, 0))[0] for b in AGING_BUCKETS}
            minors = {b: by_bucket.get(b, (0, 0))[1] for b in AGING_BUCKETS}
            totals = CurrencyTotals(
                open_invoices=sum(counts.values()),
                open_amount=from_minor(sum(minors.values()), currency),
                aging={b: from_minor(minors[b], currency) for b in AGING_BUCKETS},
                aging_counts=counts,
            )
            totals.overdue_amount = totals.open_amount - totals.aging["not_due"]
            status.totals[currency] = totals
            status.open_invoices += totals.open_invoices
    return sorted(result.values(), key=lambda s: s.instance)


def unknown_kinds(store: Store) -> dict[str, list[str]]:
    """Per instance, the debtors with open invoices whose kind nothing told (no type, legal
    form, KvK or VAT number), by id: the policy's ``unknown_kind`` decides for them, so
    ``status`` and ``plan`` list them for the operator to settle."""
    with store.engine.connect() as conn:
        return _unknown_kinds(conn)


def _unknown_kinds(conn: sa.Connection) -> dict[str, list[str]]:
    has_open = (
        sa.select(invoices.c.debtor_id)
        .where(
            invoices.c.instance == debtors.c.instance,
            invoices.c.debtor_id == debtors.c.external_id,
            invoices.c.state == "open",
            invoices.c.open_minor != 0,
        )
        .exists()
    )
    query = sa.select(debtors.c.instance, debtors.c.external_id).where(
        debtors.c.kind == DebtorKind.UNKNOWN.value, has_open
    )
    found: dict[str, list[str]] = {}
    for name, debtor_id in conn.execute(query.order_by(debtors.c.instance, debtors.c.external_id)):
        found.setdefault(name, []).append(debtor_id)
    return found


def unknown_kind_lines(found: dict[str, list[str]], shown: int = 10) -> list[str]:
    """One line per instance for :func:`unknown_kinds`, the first ``shown`` ids named."""
    lines = []
    for name, ids in sorted(found.items()):
        more = f", and {len(ids) - shown} more" if len(ids) > shown else ""
        lines.append(
            f"{name}: {len(ids)} debtor(s) of unknown kind, treated as the policy's unknown_kind "
            f"says (consumer unless set): {', '.join(ids[:shown])}{more}. Give them a type "
            "column (zakelijk/particulier), a KvK or VAT number, or a legal form in the name"
        )
    return lines
