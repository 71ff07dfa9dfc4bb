"""Benchmark: the web console's server time for the dashboard and today's plan over 100,000
open invoices of 20,000 debtors, the book of bench/plan.py.

    python bench/web.py [--invoices 100000] [--debtors 20000] [--requests 15] [--keep DIR]

Requests go to the ASGI app in-process (no network), signed in, after one warm-up request;
the figure is the median time from request to the last byte of the page. Each page is
measured four ways, each request after its own change:

* first view: nothing kept, as after a start or on a new day (the whole book planned);
* after a pause: one debtor's dispute recorded, as a person records it;
* after a sync: 1 % of the invoices paid in part, written as the sync writer writes it (the
  invoices' open amounts and an ``invoice.partially_paid`` event for each);
* unchanged: the store as it was at the last request.

The process pins itself to one core. Target (issue 17): < 300 ms each, after a change and
unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from debsync.web.figures import FiguresCache
from debsync.web.pages.plan_cache import PlanCache
from plan import NOW, write_sqlite

TARGET_MS = 300.0


def _forget(app: Any) -> None:
    """Drop what the pages keep between views, as a start does."""
    app.state.dashboard_figures = FiguresCache()
    app.state.work_plan_cache = PlanCache()


class _Changes:
    """The changes made before each request: a pause on the next debtor, or a sync's worth
    of partial payments."""

    def __init__(self, store: Any, debtors: int) -> None:
        self.store, self.debtors, self.round = store, debtors, 0

    def pause(self) -> None:
        from debsync.facts import PauseKind
        from debsync.pauses import start_pause

        self.round += 1
        start_pause(
            self.store,
            kind=PauseKind.DISPUTE,
            instance="books",
            scope="debtor",
            target=f"D{(self.round * 7919) % self.debtors:07d}",
            reason="bench",
            author="bench",
            clock=lambda: NOW,
        )

    def sync(self, share: float = 0.01) -> None:
        import sqlalchemy as sa

        from debsync.store.schema import EventKind, events, invoices

        self.round += 1
        with self.store.engine.begin() as conn:
            rows = conn.execute(
                sa.select(invoices.c.external_id, invoices.c.debtor_id, invoices.c.open_minor)
                .where(invoices.c.state == "open", invoices.c.open_minor > 100)
                .order_by(sa.func.random())
                .limit(int(self.count() * share))
            ).all()
            for external_id, _, open_minor in rows:
                conn.execute(
                    sa.update(invoices)
                    .where(invoices.c.instance == "books", invoices.c.external_id == external_id)
                    .values(open_minor=open_minor - 100)
                )
            conn.execute(
                sa.insert(events),
                [
                    {
                        "at": NOW,
                        "instance": "books",
                        "debtor_id": debtor_id,
                        "invoice_id": external_id,
                        "kind": EventKind.INVOICE_PARTIALLY_PAID,
                        "data": {"paid": "1.00"},
                    }
                    for external_id, debtor_id, _ in rows
                ],
            )

    def count(self) -> int:
        import sqlalchemy as sa

        from debsync.store.schema import invoices

        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(invoices)).scalar_one())


def _floor(store: Any, requests: int) -> float:
    """The median time of one read of every invoice's open amount in SQL: the least a
    figure over the whole book costs, for the ratio of each page to it."""
    import sqlalchemy as sa

    from debsync.store.schema import invoices

    query = sa.select(sa.func.count(), sa.func.sum(invoices.c.open_minor))
    times = []
    with store.engine.connect() as conn:
        for _ in range(requests):
            started = time.perf_counter()
            conn.execute(query).one()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _measure(
    app: Any, changes: _Changes, paths: list[str], requests: int
) -> dict[str, list[float]]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    timings: dict[str, list[float]] = {}
    before = {
        "first view": lambda: _forget(app),
        "after a pause": changes.pause,
        "after a sync": changes.sync,
        "unchanged": lambda: None,
    }
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        form = await client.get("/login")
        token = form.text.split('name="csrf" value="')[1].split('"')[0]
        signed_in = await client.post(
            "/login", data={"csrf": token, "name": "bench", "password": "bench password 1"}
        )
        assert signed_in.status_code == 303, signed_in.text
        for path in paths:
            first = await client.get(path)
            if first.status_code != 200:
                print(f"{path}: HTTP {first.status_code}, skipped")
                continue
            for how, change in before.items():
                label = f"{path} ({how})"
                timings[label] = []
                for _ in range(requests):
                    change()
                    started = time.perf_counter()
                    answer = await client.get(path)
                    timings[label].append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--debtors", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    from debsync.config import Config, ConnectorInstance
    from debsync.connectors.csv import CsvConnector, CsvSettings
    from debsync.plugins import Plugins
    from debsync.store import open_store
    from debsync.web.app import build_web_app
    from debsync.web.auth import add_user

    work = args.keep or Path(tempfile.mkdtemp(prefix="debsync-bench-web-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "web.db"
    for stale in work.glob("web.db*"):
        stale.unlink()
    started = time.perf_counter()
    write_sqlite(db, args.invoices, args.debtors)
    print(
        f"wrote {args.invoices:,} open invoices of {args.debtors:,} debtors to SQLite in "
        f"{time.perf_counter() - started:.0f} s"
    )
    store = open_store(f"sqlite:///{db}")
    add_user(store, "bench", "bench password 1", "admin", NOW)
    books = ConnectorInstance("books", "csv", CsvConnector, CsvSettings(path=work / "x.csv"))
    config = Config(path=work / "connectors.toml", store_url=str(store.engine.url))
    config = Config(path=config.path, store_url=config.store_url, connectors={"books": books})
    app = build_web_app(config, store, Plugins(entry_points=False), clock=lambda: NOW)
    changes = _Changes(store, args.debtors)
    timings = asyncio.run(_measure(app, changes, ["/", "/plan"], args.requests))
    floor = _floor(store, args.requests)
    store.dispose()
    print(f"floor (one SQL read of every invoice's open amount): median {floor:.0f} ms")
    failed = False
    for path, times in timings.items():
        median = statistics.median(times)
        verdict = "ok" if median < TARGET_MS else "over the target"
        if "first view" in path:
            verdict = "the whole book, once after a start or on a new day"
        else:
            failed |= median >= TARGET_MS
        print(
            f"{path}: median {median:.0f} ms over {len(times)} requests "
            f"(min {min(times):.0f}, max {max(times):.0f}; {median / floor:.1f}x the floor); "
            f"target < {TARGET_MS:.0f} ms: {verdict}"
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
