"""Benchmark: leasing a batch of outbox rows out of a large backlog.

A firm's quarter-end run can queue tens of thousands of actions at once; every batch a worker
sends starts with a claim. Prints milliseconds per claim of ``--limit`` rows with ``--due``
rows waiting behind ``--sent`` rows already sent, on SQLite and, when
``DEBSYNC_TEST_DATABASE_URL`` names one, on PostgreSQL (in a schema of its own, analysed as
autovacuum leaves it).

    python bench/claim.py [--due 50000] [--sent 0] [--limit 100] [--claims 20]

A claim should cost about the same at any backlog. Pin to one core with ``taskset -c 0``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from daemon import PG_ENV, store_url
from debsync.outbox import claim
from debsync.store import Store, open_store
from debsync.store.schema import outbox

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def fill(store: Store, due: int, sent: int) -> None:
    rows: list[dict[str, Any]] = [
        {
            "key": f"key-{n}",
            "instance": "books",
            "debtor_id": f"D{n:06d}",
            "step": "reminder",
            "channel": "email",
            "legal_copy": False,
            "requires_approval": False,
            "state": "sent" if n < sent else "planned",
            "invoice_ids": [f"F{n:07d}"],
            "plan": {},
            "planned_on": NOW.date(),
            "attempts": 0,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for n in range(sent + due)
    ]
    with store.engine.begin() as conn:
        conn.execute(sa.insert(outbox), rows)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE outbox")


def per_claim(store: Store, limit: int, claims: int) -> float:
    """Milliseconds per claim of ``limit`` rows, over ``claims`` claims in a row."""
    started = time.perf_counter()
    for _ in range(claims):
        got = claim(
            store,
            "bench",
            NOW,
            lease=timedelta(minutes=5),
            limit=limit,
            routes=[("books", "email")],
        )
        assert len(got) == limit, "the backlog ran out: raise --due"
    return (time.perf_counter() - started) / claims * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--due", type=int, default=50_000)
    parser.add_argument("--sent", type=int, default=0)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--claims", type=int, default=20)
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]
    for backend in backends:
        with (
            tempfile.TemporaryDirectory(prefix="debsync-claim-") as work,
            store_url(backend, Path(work)) as url,
        ):
            store = open_store(url)
            try:
                fill(store, args.due, args.sent)
                ms = per_claim(store, args.limit, args.claims)
            finally:
                store.dispose()
        print(
            f"{backend:>10}: a claim of {args.limit} rows with {args.due:,} due and "
            f"{args.sent:,} sent takes {ms:.1f} ms"
        )


if __name__ == "__main__":
    main()
