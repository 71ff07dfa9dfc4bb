"""Benchmark: the Moneybird connector against the fake over real HTTP on loopback.

Loads 50,000 open sales invoices over 10,000 contacts into SQLite (a full snapshot, 100 per
page), then syncs again with nothing changed, then with 1 % of the invoices changed (a partial
payment each), and prints the API calls of each, invoices per second of the full load, and the
highest number of calls the fake saw in any 5 minutes.

Moneybird allows 150 calls per 5 minutes, so the full load's 500 pages take about 17 minutes
of wall time when paced for real. This benchmark runs the connector's limiters, the HTTP
layer's waits and the fake's 5-minute window on one virtual clock: it moves with real time,
and every pause the limiter asks for advances it instead of sleeping. The limits are the real
ones (nothing is raised), the pacing is the connector's own, and the invoices per second are
local work only (the virtual pauses are not in them). The fake runs in a thread of this
process, so on one core its work (JSON for 50,000 invoices with their contacts) is in the
first figure; the second leaves out the CPU time the fake's thread spent building answers
(its HTTP handling stays in), which in production Moneybird's servers spend. The third
counts the same work in CPU time (every thread of this process, the fake's answers left out),
so it holds when other processes share the core and the wall-clock figures drop.

For the ratio it measures, in the same run, the floor from ``/work/shared/bench/sync_limit.py``
(stdlib CSV parse plus one SQLite upsert of the same number of rows).

    taskset -c 0 .venv/bin/python bench/moneybird.py [--invoices 50000] [--contacts 10000]

Targets (issue 13): unchanged sync <= 2 calls; 1 % changed <= 2 + ceil(changed/100); never
above 150 calls per 5 minutes; local work >= 5,000 invoices/s on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from debsync.config import ConnectorInstance  # noqa: E402
from debsync.connectors.base import ConnectorContext, SyncResult  # noqa: E402
from debsync.connectors.http import HttpFactory  # noqa: E402
from debsync.connectors.moneybird import MoneybirdConnector, MoneybirdSettings  # noqa: E402
from debsync.store import open_store  # noqa: E402
from debsync.sync import SyncEngine  # noqa: E402
from sync_csv import first_sync_floor  # noqa: E402

from fake_http import FakeServer  # noqa: E402
from fake_moneybird import FakeMoneybird  # noqa: E402


class Timed:
    """The fake's handler, with the CPU time its thread spends building answers (JSON
    included): work Moneybird's servers do, not debsync."""

    def __init__(self, fake: FakeMoneybird) -> None:
        self.fake = fake
        self.seconds = 0.0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        began = time.thread_time()
        try:
            return self.fake(request)
        finally:
            self.seconds += time.thread_time() - began


class VirtualClock:
    """Real time plus every pause asked for: waiting costs nothing, yet every limiter and the
    fake's window see the pause."""

    def __init__(self) -> None:
        self._start = datetime.now(UTC)
        self._began = time.perf_counter()
        self._slept = 0.0
        self._lock = threading.Lock()
        self.paused = 0.0

    def __call__(self) -> datetime:
        with self._lock:
            elapsed = time.perf_counter() - self._began + self._slept
        return self._start + timedelta(seconds=elapsed)

    def epoch(self) -> float:
        return self().timestamp()

    async def sleep(self, seconds: float) -> None:
        with self._lock:
            self._slept += max(0.0, seconds)
        self.paused += max(0.0, seconds)


def seed(fake: FakeMoneybird, invoices: int, contacts: int) -> list[str]:
    owners = []
    for c in range(contacts):
        business = c % 3 != 0
        owners.append(
            fake.add_contact(
                company_name=f"Handelsonderneming {c} B.V." if business else "",
                firstname="" if business else "Jan",
                lastname="" if business else f"de Vries-{c}",
                email=f"info{c}@example.nl",
                phone=f"030 {1000000 + c}",
                address1=f"Dorpsstraat {c % 200 + 1}",
                zipcode="3511 AB",
                city="Utrecht",
                country="NL",
                customer_id=str(c + 1),
            )["id"]
        )
    start = date(2026, 6, 1)
    numbers = []
    for n in range(invoices):
        issued = start + timedelta(days=n % 150)
        amount = Decimal(2500 + (n * 7919) % 250_000) / 100
        number = f"2026-{n:06d}"
        fake.add_invoice(
            owners[n % contacts],
            number,
            total=f"{amount:.2f}",
            invoice_date=issued.isoformat(),
            due_date=(issued + timedelta(days=30)).isoformat(),
            payment_reference=f"RF{n:010d}",
            language="en" if n % 17 == 0 else "nl",
        )
        numbers.append(number)
    return numbers


def sync(
    fake: FakeMoneybird, url: str, store_url: str, clock: VirtualClock
) -> tuple[float, float, SyncResult]:
    """One sync: its wall time, the CPU time of every thread of this process meanwhile (the
    fake's included) and the result."""
    settings = MoneybirdSettings.model_validate(
        {"administration_id": fake.administration_id, "token": fake.token, "base_url": url}
    )
    http = HttpFactory(clock=clock, sleep=clock.sleep)
    context = ConnectorContext("mb", Path("."), http=http)
    made = MoneybirdConnector("mb", settings, context)
    instance = ConnectorInstance("mb", "moneybird", MoneybirdConnector, settings)
    engine = SyncEngine(open_store(store_url))
    began, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(engine.run(instance, made, allow_mass_close=True))
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    assert result.ok, result.error
    return elapsed, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    args = parser.parse_args()
    clock = VirtualClock()
    fake = FakeMoneybird(clock=clock.epoch)
    began = time.perf_counter()
    numbers = seed(fake, args.invoices, args.contacts)
    print(
        f"seeded {args.invoices:,} open invoices over {args.contacts:,} contacts in "
        f"{time.perf_counter() - began:.1f} s"
    )
    changed = max(1, args.invoices // 100)
    timed = Timed(fake)
    with tempfile.TemporaryDirectory() as tmp, FakeServer(timed) as server:
        store_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        url = f"{server.url}/api/v2"
        rate = 0.0
        for label in ("full load", "unchanged sync", "1 % changed"):
            if label == "1 % changed":
                for number in numbers[:: args.invoices // changed][:changed]:
                    fake.pay(number, Decimal("10.00"))
            fake.calls.clear()
            paused_before, served_before = clock.paused, timed.seconds
            elapsed, cpu, result = sync(fake, url, store_url, clock)
            paused = clock.paused - paused_before
            line = f"{label}: {len(fake.calls):,} calls"
            if label == "full load":
                rate = args.invoices / elapsed
                served = timed.seconds - served_before
                line += (
                    f"; {args.invoices:,} invoices in {elapsed:.2f} s = {rate:,.0f} invoices/s "
                    f"with the fake answering on the same core; debsync's own work "
                    f"{args.invoices / (elapsed - served):,.0f} invoices/s (the fake's "
                    f"answers, {served:.2f} s of its thread's CPU time, left out); in CPU "
                    f"time (what other processes on the core take is not in it) "
                    f"{args.invoices / (cpu - served):,.0f} invoices/s; "
                    f"paced {paused / 60:.1f} virtual minutes; "
                    f"{result.counts.writes:,} writes"
                )
            elif label == "unchanged sync":
                line += f" (target <= 2) in {elapsed:.2f} s; {result.counts.writes:,} writes"
            else:
                bound = 2 + math.ceil(changed / 100)
                line += (
                    f" for {changed:,} changed invoices (target <= {bound}) in {elapsed:.2f} s; "
                    f"{result.counts.partial_payments:,} partial payments recorded"
                )
            print(line)
        print(f"highest calls in any 5 minutes: {fake.max_in_window} (limit 150)")
        limit = first_sync_floor(Path(tmp), args.invoices, args.contacts)
        print(
            f"floor (sync_limit.py, same run): {limit:,.0f} rows/s; full load at "
            f"{rate / limit:.1%} of it"
        )


if __name__ == "__main__":
    main()
