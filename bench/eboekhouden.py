"""Benchmark: the e-Boekhouden connector against the REST fake over real HTTP on loopback.

Syncs 20,000 open items over 5,000 relations into SQLite twice, and prints for the first sync
and for the unchanged re-sync the calls the fake served (by route) and items per second. The
fake runs in a thread of this process, so on one core its work is in the figures too.

    taskset -c 0 python bench/eboekhouden.py [--invoices 20000] [--relations 5000]

Targets (issue 14): unchanged sync = the session plus ceil(N/limit) list calls; local work
>= 5,000 items/s on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from debsync.config import ConnectorInstance
from debsync.connectors.base import ConnectorContext
from debsync.connectors.eboekhouden import EboekhoudenConnector, EboekhoudenSettings
from debsync.store import open_store
from debsync.sync import SyncEngine

from fake_eboekhouden import API_TOKEN, FakeRest, Mutation, relation
from fake_http import FakeServer


def seed(fake: FakeRest, invoices: int, relations: int) -> None:
    for r in range(1, relations + 1):
        fake.relations[r] = relation(
            r,
            f"Handelsonderneming {r} B.V." if r % 3 else f"J. de Vries-{r}",
            kind="B" if r % 3 else "P",
            emailAddress=f"info{r}@example.nl",
            emailAddressReminder=f"debiteuren{r}@example.nl",
            phoneNumber=f"030 {1000000 + r}",
            address=f"Dorpsstraat {r}",
            postalCode="3511 AB",
            city="Utrecht",
        )
    start = date(2026, 6, 1)
    for n in range(1, invoices + 1):
        fake.mutations[n] = Mutation(
            n,
            f"F{n:07d}",
            (n % relations) + 1,
            start + timedelta(days=n % 150),
            14 if n % 2 else 30,
            Decimal(2500 + (n * 7919) % 250_000) / 100,
        )


def sync(url: str, store_url: str) -> tuple[float, object]:
    settings = EboekhoudenSettings.model_validate(
        {"token": API_TOKEN, "source": "bench", "base_url": url, "calls_per_minute": 60_000}
    )
    context = ConnectorContext("eb", Path("."))
    connector = EboekhoudenConnector("eb", settings, context)
    instance = ConnectorInstance("eb", "eboekhouden", EboekhoudenConnector, settings)
    engine = SyncEngine(open_store(store_url))
    began = time.perf_counter()
    result = asyncio.run(engine.run(instance, connector, allow_mass_close=True))
    elapsed = time.perf_counter() - began
    assert result.ok, result.error
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--relations", type=int, default=5_000)
    args = parser.parse_args()
    fake = FakeRest()
    seed(fake, args.invoices, args.relations)
    with tempfile.TemporaryDirectory() as tmp, FakeServer(fake) as server:
        store_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        for label in ("first sync", "unchanged sync"):
            fake.calls.clear()
            elapsed, result = sync(server.url, store_url)
            calls = sum(fake.calls.values())
            routes = ", ".join(f"{route} {n}" for route, n in sorted(fake.calls.items()))
            print(
                f"{label}: {args.invoices:,} items in {elapsed:.2f} s = "
                f"{args.invoices / elapsed:,.0f} items/s; {calls:,} calls ({routes}); "
                f"{result.counts.writes:,} writes"  # type: ignore[attr-defined]
            )


if __name__ == "__main__":
    main()
