"""Benchmark: plan a million open invoices over 200,000 debtors, beside its floor.

Prints invoices planned per second by the columnar plan (data in memory), then load + plan
of the same book from SQLite in a fresh process with its peak RSS; each with ``ratio to
floor``, measured in the same run: ``../shared/bench/plan_limit.py`` (a bare pass over 1M
tuples) for the plan, and a bare ``fetchall`` of the columns the loader reads plus that pass
for load + plan.

    python bench/plan.py [--invoices 1000000] [--debtors 200000] [--keep DIR] [--reference]

``--reference`` also times ``scheduler.plan()`` on the same book and checks that the columnar
plan equals it. Targets (issue 16, one core): plan within 3x of the floor; load + plan within
3x of its floor; peak RSS < 1.5 GB. Pin to one core with ``taskset -c 0``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

TODAY = date(2026, 3, 18)
NOW = datetime(2026, 3, 18, 8, 0, tzinfo=UTC)
# Every debtor reachable on every channel, as in the in-memory book.
ADDRESS = {"lines": ["Dorpsstraat 1"], "postcode": "3512 AB", "city": "Utrecht", "country": "NL"}
FLOOR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "plan_limit.py"


def book(invoices: int, debtors: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """A steady-state book: half the invoices not yet due, most overdue ones a few weeks
    late, a long tail far up the ladder; every step of the default policy whose day has
    passed was sent on that day (a veertiendagenbrief's term kept), so only the invoices
    whose next step falls today have something to do. A few credit notes, direct debits and
    foreign-currency invoices."""
    rng = random.Random(seed)
    for n in range(invoices):
        d = rng.randrange(debtors)
        roll = rng.random()
        if roll < 0.5:
            overdue = -rng.randint(0, 30)
        elif roll < 0.8:
            overdue = rng.randint(1, 30)
        elif roll < 0.92:
            overdue = rng.randint(31, 90)
        else:
            overdue = rng.randint(91, 365)
        due = TODAY - timedelta(days=overdue)
        consumer = d % 3 == 0
        yield {
            "n": n,
            "debtor": f"D{d:07d}",
            "kind": "consumer" if consumer else "business",
            "due": due,
            "currency": "USD" if n % 97 == 0 else "EUR",
            "open_minor": -rng.randint(100, 50_000) if n % 53 == 0 else rng.randint(500, 900_000),
            "direct_debit": n % 31 == 0,
            "steps": _steps_taken(due, consumer),
        }


@cache
def _steps_taken(due: date, consumer: bool) -> list[tuple[str, date, str | None]]:
    """The default policy's steps before today for an invoice due on ``due``, each sent on
    the first day it was due."""
    from debsync import law
    from debsync.claims import wik_dates
    from debsync.facts import StepSent
    from debsync.model import DebtorKind
    from debsync.policy import default_policy

    policy = default_policy()
    kind = DebtorKind.CONSUMER if consumer else DebtorKind.BUSINESS
    taken: list[tuple[str, date, str | None]] = []
    last, escalate = due, date.min
    for step in policy.steps:
        if not step.applies_to(kind):
            continue
        if step.days_after_due is not None:
            day = due + timedelta(days=step.days_after_due)
        else:
            day = last + timedelta(days=step.days_after_previous or 0)
        day = max(day, escalate)
        if day >= TODAY:
            break
        taken.append((step.name, day, step.role))
        last = day
        if step.role == "wik_notice":
            sent = StepSent(step.name, day, step.role, law.presumed_receipt(day, "letter"))
            escalate = wik_dates(sent, policy)[1]
    return taken


def in_memory(invoices: int, debtors: int) -> Any:
    from debsync import law
    from debsync.facts import DebtorFacts, InstanceFacts, InvoiceFacts, Snapshot, StepSent
    from debsync.model import DebtorKind, Language

    inv_facts, debtor_facts, history = [], {}, {}
    for row in book(invoices, debtors):
        number = f"F{row['n']:08d}"
        inv_facts.append(
            InvoiceFacts(
                "books",
                number,
                number,
                row["debtor"],
                row["due"],
                row["currency"],
                row["open_minor"],
                row["direct_debit"],
            )
        )
        key = ("books", row["debtor"])
        if key not in debtor_facts:
            debtor_facts[key] = DebtorFacts(
                "books", row["debtor"], DebtorKind(row["kind"]), Language.NL
            )
        if row["steps"]:
            history[("books", number)] = [
                StepSent(
                    name,
                    on,
                    role,
                    law.presumed_receipt(on, "letter") if role else None,
                    4000 if role else None,
                )
                for name, on, role in row["steps"]
            ]
    return Snapshot(
        inv_facts, debtor_facts, {"books": InstanceFacts("books", "default", NOW)}, history
    )


def write_sqlite(path: Path, invoices: int, debtors: int) -> None:
    import sqlalchemy as sa

    from debsync import law
    from debsync.store import open_store
    from debsync.store.schema import EventKind, connector_state, events
    from debsync.store.schema import debtors as debtor_table
    from debsync.store.schema import invoices as invoice_table

    store = open_store(f"sqlite:///{path}")
    fingerprint = hashlib.blake2b(b"bench", digest_size=16).digest()
    seen: set[str] = set()
    inv_rows, debtor_rows, event_rows = [], [], []

    def flush(conn: sa.Connection) -> None:
        if debtor_rows:
            conn.execute(sa.insert(debtor_table), debtor_rows)
        if inv_rows:
            conn.execute(sa.insert(invoice_table), inv_rows)
        if event_rows:
            conn.execute(sa.insert(events), event_rows)
        inv_rows.clear(), debtor_rows.clear(), event_rows.clear()

    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(connector_state).values(instance="books", type="csv", last_success_at=NOW)
        )
        for row in book(invoices, debtors):
            number = f"F{row['n']:08d}"
            if row["debtor"] not in seen:
                seen.add(row["debtor"])
                debtor_rows.append(
                    {
                        "instance": "books",
                        "external_id": row["debtor"],
                        "name": "x",
                        "kind": row["kind"],
                        "emails": [f"{row['debtor'].lower()}@example.nl"],
                        "phones": ["+31612345678"],
                        "language": "nl",
                        "address": ADDRESS,
                        "kvk": None,
                        "vat": None,
                        "iban": None,
                        "fingerprint": fingerprint,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                )
            inv_rows.append(
                {
                    "instance": "books",
                    "external_id": number,
                    "number": number,
                    "debtor_id": row["debtor"],
                    "issue_date": row["due"] - timedelta(days=30),
                    "due_date": row["due"],
                    "currency": row["currency"],
                    "total_minor": row["open_minor"],
                    "open_minor": row["open_minor"],
                    "payment_reference": None,
                    "payment_url": None,
                    "direct_debit": row["direct_debit"],
                    "has_document": False,
                    "state": "open",
                    "closed_at": None,
                    "fingerprint": fingerprint,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            for name, on, role in row["steps"]:
                event_rows.append(
                    {
                        "at": NOW,
                        "instance": "books",
                        "debtor_id": row["debtor"],
                        "invoice_id": number,
                        "kind": EventKind.STEP_SENT,
                        "run_id": None,
                        "data": {
                            "step": name,
                            "sent_on": on.isoformat(),
                            "role": role,
                            "received_on": (
                                law.presumed_receipt(on, "letter").isoformat() if role else None
                            ),
                            "stated_costs_minor": 4000 if role else None,
                        },
                    }
                )
            if len(inv_rows) >= 20_000:
                flush(conn)
        flush(conn)
    store.dispose()


def load_and_plan(path: Path) -> dict[str, float]:
    from debsync.columnar_plan import plan
    from debsync.planning_columnar import load_book
    from debsync.policy import default_policy
    from debsync.store import open_store

    started = time.perf_counter()
    store = open_store(f"sqlite:///{path}")
    policies = {"default": default_policy()}
    book = load_book(store, {"books": "default"}, policies=policies, today=TODAY)
    loaded = time.perf_counter()
    result = plan(book, policies, NOW)
    done = time.perf_counter()
    return {
        "invoices": len(book),
        "load_s": loaded - started,
        "plan_s": done - loaded,
        "actions": len(result.actions),
        "peak_rss_mb": _peak_mb(),
    }


def _peak_mb() -> float:
    """This process's peak RSS. Linux keeps ``ru_maxrss`` across fork and exec, so a fresh
    process started by a large one would report its parent's; ``VmHWM`` is its own."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fetch_floor(path: Path) -> dict[str, float]:
    """A bare ``fetchall`` of the columns :func:`load_book` reads, with the same queries."""
    import sqlite3

    from sqlalchemy.dialects import sqlite

    from debsync.planning_columnar import book_queries

    started = time.perf_counter()
    conn = sqlite3.connect(path)
    rows = 0
    for query in book_queries(["books"]):
        sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        rows += len(conn.execute(sql).fetchall())
    conn.close()
    return {"fetch_s": time.perf_counter() - started, "rows": rows}


def floor_rate() -> float:
    """Invoices per second of ``plan_limit.py``'s bare pass, on this machine, now."""
    output = subprocess.run(
        [sys.executable, str(FLOOR)], check=True, capture_output=True, text=True
    ).stdout
    return float(output.split("bare plan pass:")[1].split("invoices/s")[0].replace(",", ""))


def fresh(flag: str, db: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, flag, str(db)], check=True, capture_output=True, text=True
    ).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--debtors", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--reference", action="store_true", help="time scheduler.plan() too")
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fetch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load_and_plan(args.load)))
        return
    if args.fetch:
        print(json.dumps(fetch_floor(args.fetch)))
        return

    from debsync.columnar import from_snapshot
    from debsync.columnar_plan import plan
    from debsync.policy import default_policy

    rate = floor_rate()
    print(f"floor (plan_limit.py): {rate:,.0f} invoices/s")
    snapshot = in_memory(args.invoices, args.debtors)
    book_ = from_snapshot(snapshot)
    policies = {"default": default_policy()}
    started = time.perf_counter()
    result = plan(book_, policies, NOW)
    elapsed = time.perf_counter() - started
    n = len(book_)
    print(
        f"plan only: {n:,} invoices in {elapsed:.2f} s = {n / elapsed:,.0f} invoices/s; "
        f"{len(result.actions):,} actions; peak RSS {_peak_mb():,.0f} MB (with the snapshot "
        f"it was built from); ratio to floor: {rate * elapsed / n:.1f}x"
    )
    reasons: dict[str, int] = {}
    for d in result.decisions:
        reasons[d.reason.value] = reasons.get(d.reason.value, 0) + 1
    print("  decisions: " + ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items())))
    if args.reference:
        from debsync.scheduler import plan as reference

        started = time.perf_counter()
        expected = reference(snapshot, policies, NOW)
        took = time.perf_counter() - started
        same = (
            expected.actions == result.actions
            and expected.warnings == result.warnings
            and list(expected.decisions) == list(result.decisions)
        )
        print(
            f"  reference scheduler.plan(): {took:.2f} s = {n / took:,.0f} invoices/s "
            f"({took / elapsed:.1f}x the columnar plan); equal: {same}"
        )
    del snapshot, book_, result

    work = args.keep or Path(tempfile.mkdtemp(prefix="debsync-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "plan.db"
    for stale in work.glob("plan.db*"):
        stale.unlink()
    started = time.perf_counter()
    write_sqlite(db, args.invoices, args.debtors)
    print(f"wrote the book to SQLite in {time.perf_counter() - started:.0f} s")
    floor = fresh("--fetch", db)
    figures = fresh("--load", db)
    total = figures["load_s"] + figures["plan_s"]
    floor_s = floor["fetch_s"] + figures["invoices"] / rate
    print(
        f"load + plan from SQLite: {figures['invoices']:,.0f} invoices in {total:.1f} s "
        f"(load {figures['load_s']:.1f} s, plan {figures['plan_s']:.1f} s), "
        f"{figures['actions']:,.0f} actions, peak RSS {figures['peak_rss_mb']:,.0f} MB; "
        f"floor {floor_s:.1f} s (fetchall {floor['fetch_s']:.1f} s + bare pass); "
        f"ratio to floor: {total / floor_s:.1f}x"
    )


if __name__ == "__main__":
    main()
