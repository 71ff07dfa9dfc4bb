"""Benchmark: the Exact Online connector against the fake over real HTTP on loopback.

Loads 100,000 open receivables over 20,000 accounts in 5 divisions (one in ten partly paid,
so split over two payment-term rows) into SQLite, then syncs again with nothing changed, and
prints: the API calls of the full load (per division, and its data calls against the bound
ceil(N/1000) per sync endpoint), invoices per second of local work (the time the fake spent
answering taken out), the calls of the unchanged incremental
sync per division, and the highest number of calls any division saw in one minute (the
fake counts over a sliding 60 s window of real time; no virtual clock and no raised limits
are needed, since a division's full load takes about 30 calls). The fake runs in a thread
of this process, so on one core its work is in the figures too.

For the ratio it measures, in the same run, the floor from ``/work/shared/bench/sync_limit.py``
(stdlib CSV parse plus one SQLite upsert of the same number of rows).

    taskset -c 0 .venv/bin/python bench/exact.py [--invoices 100000] [--accounts 20000]

Targets (issue 12): full load within ceil(N/1000) + a small constant of data calls per
division; unchanged incremental sync <= 4 calls per division; never above 60 calls a minute
per division; local work >= 5,000 invoices/s on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from debsync.config import ConnectorInstance
from debsync.connectors.base import ConnectorContext
from debsync.connectors.exact import ExactConnector, ExactSettings
from debsync.store import open_store
from debsync.sync import SyncEngine
from sync_csv import first_sync_floor

from fake_exact import FakeExact, MemoryVault
from fake_http import FakeServer

DIVISIONS = [101, 102, 103, 104, 105]


class Served:
    """The fake, timed: its answers share the core with debsync, and are not debsync's work."""

    def __init__(self, fake: FakeExact) -> None:
        self.fake = fake
        self.seconds = 0.0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        began = time.perf_counter()
        response: httpx.Response = self.fake(request)
        self.seconds += time.perf_counter() - began
        return response


def seed(fake: FakeExact, invoices: int, accounts: int) -> None:
    per_division = accounts // len(DIVISIONS)
    owners: list[tuple[int, str]] = []
    for index, division in enumerate(DIVISIONS):
        for a in range(per_division):
            n = index * per_division + a
            business = n % 3 != 0
            account = fake.add_account(
                division,
                f"Handelsonderneming {n} B.V." if business else f"J. de Vries-{n}",
                1000 + n,
                Email=f"debiteuren{n}@example.nl",
                Phone=f"030 {1000000 + n}",
                AddressLine1=f"Dorpsstraat {n % 200 + 1}",
                Postcode="3511 AB",
                City="Utrecht",
                Country="NL",
                Language="EN" if n % 7 == 0 else "NL",
                ChamberOfCommerce=f"{10000000 + n}" if business else None,
            )
            fake.add_contact(division, account, Email=f"contact{n}@example.nl", Mobile="0612345678")
            owners.append((division, account))
    start = date(2026, 6, 1)
    for n in range(invoices):
        division, account = owners[n % len(owners)]
        total = Decimal(2500 + (n * 7919) % 250_000) / 100
        issued = start + timedelta(days=n % 150)
        fake.add_receivable(
            division,
            account,
            24_700_000 + n,
            amount=total,
            open_amount=total / 2 if n % 10 == 0 else None,
            invoice_date=issued,
            due_date=issued + timedelta(days=30),
        )


def connector(fake: FakeExact, url: str, vault: MemoryVault) -> ExactConnector:
    settings = ExactSettings.model_validate(
        {
            "client_id": fake.oauth.client_id,
            "client_secret": fake.oauth.client_secret,
            "base_url": url,
            "divisions": DIVISIONS,
        }
    )
    return ExactConnector("ex", settings, ConnectorContext("ex", Path("."), tokens=vault))


def sync(fake: FakeExact, url: str, vault: MemoryVault, store_url: str) -> tuple[float, Any]:
    made = connector(fake, url, vault)
    instance = ConnectorInstance("ex", "exact", ExactConnector, made.settings)
    engine = SyncEngine(open_store(store_url))
    began = time.perf_counter()
    result = asyncio.run(engine.run(instance, made, allow_mass_close=True))
    elapsed = time.perf_counter() - began
    assert result.ok, result.error
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    args = parser.parse_args()
    fake = FakeExact(DIVISIONS)
    began = time.perf_counter()
    seed(fake, args.invoices, args.accounts)
    print(
        f"seeded {args.invoices:,} receivables over {args.accounts:,} accounts in "
        f"{len(DIVISIONS)} divisions in {time.perf_counter() - began:.1f} s"
    )
    pair = fake.oauth.issue()
    now = time.time()
    vault = MemoryVault(
        {
            "access_token": pair["access_token"],
            "refresh_token": pair["refresh_token"],
            "issued_at": now,
            "expires_at": now + float(pair["expires_in"]),
        }
    )
    terms = math.ceil(args.invoices * 1.1 / len(DIVISIONS) / 1000)
    crm = math.ceil(args.accounts / len(DIVISIONS) / 1000)
    bound = terms + 2 * crm + 1  # payment terms, accounts, contacts, the deletion log
    served = Served(fake)
    with tempfile.TemporaryDirectory() as tmp, FakeServer(served) as server:
        store_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        rate = 0.0
        for label in ("full load", "unchanged incremental sync"):
            fake.calls.clear()
            served.seconds = 0.0
            elapsed, result = sync(fake, server.url, vault, store_url)
            by_division = Counter(d for d, _ in fake.calls)
            data = {
                d: sum(1 for dd, c in fake.calls if dd == d and "/sync/" in c) for d in DIVISIONS
            }
            per = ", ".join(f"{d}: {by_division[d]}" for d in DIVISIONS)
            line = f"{label}: {len(fake.calls):,} calls (per division {per})"
            if label == "full load":
                rate = args.invoices / (elapsed - served.seconds)
                line += (
                    f"; data calls per division {max(data.values())} "
                    f"(bound ceil(N/1000) per endpoint: {bound}); "
                    f"{args.invoices:,} invoices in {elapsed:.2f} s, of which the fake's "
                    f"answers {served.seconds:.2f} s: {rate:,.0f} invoices/s of local work; "
                    f"{result.counts.writes:,} writes"
                )
            else:
                line += f" in {elapsed:.2f} s; {result.counts.writes:,} writes"
            print(line)
        print(f"highest calls in one minute per division: {max(fake.max_per_minute.values())}")
        limit = first_sync_floor(Path(tmp), args.invoices, args.accounts)
        print(
            f"floor (sync_limit.py, same run): {limit:,.0f} rows/s; full load at "
            f"{rate / limit:.1%} of it"
        )


if __name__ == "__main__":
    main()
