"""Writing a page's new rows: bulk inserts through the driver's own ``executemany``, inside
the caller's SQLAlchemy transaction (and savepoint), and the page's rejects, logged once per
kind of problem rather than once per record.

A first sync inserts a few rows per invoice; SQLAlchemy's per-row parameter processing cost
more than SQLite itself (one UTC conversion per timestamp, 460,000 of them for 100,000
invoices). Core stays the schema and the query language: the statement is Core's own insert,
compiled for the connection's dialect, and every value goes through its column type's own
bind processor, so the stored bytes are the ones ``conn.execute(insert(table), rows)``
stores. What is saved is the per-row machinery, and the conversion of a value repeated
across a page (the page's timestamp, the few hundred distinct dates), which is done once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from debsync.connectors.base import Reject
from debsync.errors import scrub
from debsync.model import MAX_ID_LENGTH, clean_text
from debsync.store.driver import Processor, compile_for
from debsync.store.schema import sync_rejects

log = logging.getLogger("debsync.sync")


class _Insert(NamedTuple):
    sql: str
    keys: tuple[str, ...]
    """The row keys in the statement's parameter order."""
    positional: bool
    processors: tuple[tuple[int, Processor, bool], ...]
    """(index into ``keys``, bind processor, whether its values are scalars, converted once
    each: booleans, dates, timestamps; not JSON documents)."""


@lru_cache(maxsize=64)
def _compiled(dialect: Dialect, table: sa.Table, keys: tuple[str, ...]) -> _Insert:
    missing = [
        c.key for c in table.columns if c.key not in keys and (c.default or c.onupdate) is not None
    ]
    if missing:  # Core would fill these in; this path does not
        raise ValueError(f"bulk insert into {table.name} without {', '.join(missing)}")
    compiled = compile_for(sa.insert(table).inline(), dialect, keys, column_keys=list(keys))
    order = compiled.names if compiled.positional else keys
    if set(order) != set(keys):  # pragma: no cover - an escaped bind name: a schema change
        raise ValueError(f"bulk insert into {table.name}: parameters {order} for {keys}")
    processors = tuple(
        (index, compiled.processors[key], not isinstance(table.c[key].type, sa.JSON))
        for index, key in enumerate(order)
        if key in compiled.processors
    )
    return _Insert(compiled.sql, order, compiled.positional, processors)


def insert_many(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, as for Core's executemany) into ``table``."""
    if rows:
        keys = tuple(rows[0])
        pick = itemgetter(*keys) if len(keys) > 1 else lambda row: (row[keys[0]],)
        insert_tuples(conn, table, keys, list(map(pick, rows)))


def insert_tuples(
    conn: Connection, table: sa.Table, keys: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows``, tuples of the values of the columns ``keys``, into ``table``."""
    if not rows:
        return
    plan = _compiled(conn.dialect, table, keys)
    if plan.keys != keys:
        order = itemgetter(*map(keys.index, plan.keys))
        rows = [order(row) for row in rows]
    params: list[Any] = list(map(list, rows))
    for index, process, remember in plan.processors:
        seen: dict[Any, Any] = {}
        for values in params:
            value = values[index]
            if not remember:
                values[index] = process(value)
            elif value in seen:
                values[index] = seen[value]
            else:
                values[index] = seen[value] = process(value)
    if plan.positional:
        params = [tuple(values) for values in params]
    else:
        params = [dict(zip(plan.keys, values, strict=True)) for values in params]
    conn.exec_driver_sql(plan.sql, params)


def _reject_row(run_id: int, reject: Reject) -> dict[str, Any]:
    """A reject as its row, bounded to its columns whoever built it: it always stores."""
    invoice_id = clean_text(reject.invoice_id) if reject.invoice_id else None
    return {
        "run_id": run_id,
        "kind": reject.kind[:16],
        "ref": clean_text(reject.ref)[:MAX_ID_LENGTH],
        "reason": clean_text(scrub(reject.reason))[:2000],
        "invoice_id": invoice_id if invoice_id and len(invoice_id) <= MAX_ID_LENGTH else None,
        "dropped": reject.dropped,
    }


def insert_rejects(conn: Connection, instance: str, run_id: int, rejects: list[Reject]) -> None:
    """Store a page's rejects and log one line per kind of record and problem (the field a
    reason names first), with a count and the first record: a broken export column costs one
    line, not one per row; every reject stays in ``debsync status``."""
    rows = [_reject_row(run_id, r) for r in rejects]
    insert_many(conn, sync_rejects, rows)
    groups: defaultdict[tuple[str, bool, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["kind"], row["dropped"], row["reason"].partition(":")[0]].append(row)
    for (kind, dropped, _), same in groups.items():
        first = same[0]
        log.info(
            "sync %s: %s %d %s record(s), e.g. %s: %s",
            instance,
            "repaired" if dropped else "rejected",
            len(same),
            kind,
            first["ref"],
            first["reason"],
        )
