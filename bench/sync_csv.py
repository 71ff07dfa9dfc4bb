"""Benchmark: sync a 100,000-invoice Dutch open-items CSV into SQLite.

Prints invoices per second and peak RSS for a first sync and for an unchanged re-sync, and
each one's ratio to its floor (``sync_limit.py`` on the same file, in the same run). Each
phase runs in a fresh process, so its peak RSS is its own and no cache carries over.

    python bench/sync_csv.py [--invoices 100000] [--debtors 20000] [--rounds 3] [--keep DIR]

Targets (issue 16, one core): first sync within 3x of its floor, unchanged re-sync within
1.2x of its floor, peak RSS < 300 MB. The floor writes one table of nine text columns; debsync
stores debtors, invoices and their dossier events with the indexes its readers need, so the
first sync also prints its *store floor*: SQLite alone inserting those very rows. Pin to one
core with ``taskset -c 0`` for comparable figures. The floor and the two syncs alternate for
``--rounds`` rounds, so a busy spell hits both alike; the median of the rounds' ratios is the
figure to report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

HEADER = (
    "Relatiecode;Naam;Soort;E-mail;Telefoon;Adres;Postcode;Plaats;KvK-nummer;Taal;"
    "Factuurnummer;Factuurdatum;Vervaldatum;Bedrag;Openstaand;Betalingskenmerk"
)
STREETS = ("Dorpsstraat", "Kerkstraat", "Stationsweg", "Molenweg", "Schoolstraat", "Julianalaan")
CITIES = ("Utrecht", "Zwolle", "Haarlem", "Groningen", "Tilburg", "Arnhem", "Delft", "Leiden")


def _dutch(amount_cents: int) -> str:
    euros, cents = divmod(abs(amount_cents), 100)
    grouped = f"{euros:,}".replace(",", ".")
    return f"{'-' if amount_cents < 0 else ''}{grouped},{cents:02d}"


FLOOR = Path("/work/shared/bench/sync_limit.py")
"""The first-sync floor the platform benchmarks divide by (../shared/bench/README.md)."""


def floors(path: Path) -> dict[str, float]:
    """Rows per second of ``sync_limit.py``'s first sync and unchanged re-sync of ``path``,
    on this machine, now."""
    output = subprocess.run(
        [sys.executable, str(FLOOR), str(path)], check=True, capture_output=True, text=True
    ).stdout
    found = {}
    for label, pattern in (
        ("first sync", "first sync limit"),
        ("unchanged", "unchanged limit"),
        ("parse", "parse\\+convert"),
    ):
        match = re.search(rf"{pattern} ([\d,]+) rows/s", output)
        assert match, output
        found[label] = float(match.group(1).replace(",", ""))
    return found


def store_floor(stored: Path, work: Path) -> tuple[int, float]:
    """What SQLite alone takes to store what debsync stored: the rows of ``stored``'s
    debtors, invoices and events, inserted as they are (one executemany per table, one
    transaction, the store's pragmas) into a fresh database with debsync's schema and
    indexes. Returns the row count and the seconds."""
    import sqlite3

    from debsync.store import open_store

    fresh = work / "store-floor.db"
    for stale in work.glob("store-floor.db*"):
        stale.unlink()
    open_store(f"sqlite:///{fresh}").dispose()  # the schema, by debsync's migrations
    source = sqlite3.connect(stored)
    tables = {
        name: source.execute(f"SELECT * FROM {name}").fetchall()
        for name in ("debtors", "invoices", "events")
    }
    source.close()
    db = sqlite3.connect(fresh, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    db.execute("BEGIN")
    for name, rows in tables.items():
        marks = ", ".join("?" * len(rows[0]))
        db.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
    db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return sum(map(len, tables.values())), elapsed


def first_sync_floor(work: Path, invoices: int, debtors: int) -> float:
    """Rows per second of ``sync_limit.py``'s first sync on this machine, now, on an export
    of the same size the benchmark syncs."""
    path = work / "floor.csv"
    generate(path, invoices, debtors)
    return floors(path)["first sync"]


def generate(path: Path, invoices: int, debtors: int, seed: int = 2026) -> None:
    rng = random.Random(seed)
    today = date(2026, 11, 22)
    lines = [HEADER]
    for n in range(invoices):
        d = n % debtors
        business = d % 3 != 0
        name = f"Handelsonderneming {d} B.V." if business else f"J. de Vries-{d}"
        kvk = f"{10000000 + d}" if business else ""
        issued = today - timedelta(days=rng.randint(0, 200))
        due = issued + timedelta(days=30)
        total = rng.randint(2_500, 2_500_000)
        open_ = total if rng.random() < 0.8 else rng.randint(100, total)
        lines.append(
            ";".join(
                (
                    f"D{d:06d}",
                    name,
                    "B" if business else "P",
                    f"debiteur{d}@example.nl",
                    f"06-{10000000 + d}",
                    f"{STREETS[d % len(STREETS)]} {d % 200 + 1}",
                    f"{1000 + d % 8999} {'AB' if d % 2 else 'XZ'}",
                    CITIES[d % len(CITIES)],
                    kvk,
                    "en" if d % 7 == 0 else "nl",
                    f"2026-{n:07d}",
                    issued.strftime("%d-%m-%Y"),
                    due.strftime("%d-%m-%Y"),
                    _dutch(total),
                    _dutch(open_),
                    f"RF18{n:010d}",
                )
            )
        )
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")


def phase(config_path: Path) -> dict[str, float]:
    """One sync in this process; returns its figures."""
    from debsync.clock import system_clock
    from debsync.config import load_config
    from debsync.plugins import Plugins
    from debsync.store import open_store
    from debsync.sync import SyncEngine, build_connector

    config = load_config(config_path, Plugins(entry_points=False))
    store = open_store(config.store_url)
    instance = config.connectors["bench"]
    engine = SyncEngine(store)
    started = time.perf_counter()
    connector = build_connector(instance, config, system_clock, store)
    result = asyncio.run(engine.run(instance, connector))
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"sync failed: {result.error}")
    return {
        "seconds": elapsed,
        "invoices": result.counts.invoices_seen,
        "writes": result.counts.writes,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--debtors", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="floor and syncs, alternated")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--phase", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase)))
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="debsync-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / "open-items.csv"
    started = time.perf_counter()
    generate(csv_path, args.invoices, args.debtors)
    print(
        f"generated {args.invoices:,} invoices over {args.debtors:,} debtors "
        f"({csv_path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s"
    )
    (work / "var").mkdir(exist_ok=True)
    config = work / "connectors.toml"
    config.write_text(
        f'[connectors.bench]\ntype = "csv"\npath = "{csv_path.name}"\n', encoding="utf-8"
    )
    ratios: dict[str, list[float]] = {"first sync": [], "unchanged re-sync": []}
    for number in range(1, args.rounds + 1):
        print(f"round {number}:")
        for stale in (work / "var").glob("debsync.db*"):
            stale.unlink()
        limits = floors(csv_path)
        for label, floor in (("first sync", "first sync"), ("unchanged re-sync", "unchanged")):
            figures = run_phase(config)
            rate = figures["invoices"] / figures["seconds"]
            ratios[label].append(limits[floor] / rate)
            print(
                f"{label:>18}: {figures['invoices']:,.0f} invoices in {figures['seconds']:.2f} s "
                f"= {rate:,.0f} invoices/s, {figures['writes']:,.0f} writes, "
                f"peak RSS {figures['peak_rss_mb']:.0f} MB; floor {limits[floor]:,.0f}/s, "
                f"ratio to floor: {limits[floor] / rate:.1f}x"
            )
            if floor == "first sync":
                rows, seconds = store_floor(work / "var" / "debsync.db", work)
                floor_seconds = figures["invoices"] / limits["first sync"]
                least = seconds + figures["invoices"] / limits["parse"]
                print(
                    f"{'':>18}  store floor: SQLite alone inserting the {rows:,} rows this "
                    f"sync stored (debtors, invoices, events) into debsync's schema takes "
                    f"{seconds:.2f} s = {seconds / floor_seconds:.1f}x the floor's whole first "
                    f"sync; that and the floor's parse: {least / floor_seconds:.1f}x the floor"
                )
    for label, found in ratios.items():
        print(
            f"{label:>18}: ratio to floor per round: {', '.join(f'{r:.1f}x' for r in found)}; "
            f"median ratio to floor: {statistics.median(found):.1f}x"
        )


def run_phase(config: Path) -> dict[str, float]:
    """One sync of ``config`` in a fresh process: its figures."""
    output = subprocess.run(
        [sys.executable, __file__, "--phase", str(config)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


if __name__ == "__main__":
    main()
