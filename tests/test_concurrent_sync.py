"""One sync per instance at a time: three processes syncing one changed export, started together
on a fresh store, ten rounds, record every payment and every closing exactly once.

Before the store's sync lock, two processes that read the stored open amounts before either
wrote derived the same payments twice, and the events table, append-only, kept both.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from debsync.clock import system_clock
from debsync.store import open_store
from debsync.store.locks import sync_lock
from debsync.store.schema import EventKind, connector_state, events, payments, sync_runs

from conftest import PG_ENV
from csv_helpers import export_header, write
from csv_helpers import sync as csv_sync

INVOICES = 300
ROUNDS = 10
PROCESSES = 3
PER_ROUND = 12  # invoices partially paid and invoices removed (closed), each, per round


@dataclass
class Book:
    """The export as a bookkeeping program would write it, changing round by round."""

    open_cents: dict[str, int] = field(
        default_factory=lambda: {f"F{n:04d}": 100_000 + 37 * n for n in range(INVOICES)}
    )
    paid_cents: int = 0
    partial: int = 0
    closed: int = 0

    def rows(self) -> list[list[str]]:
        header = export_header("Telefoon", "Adres", "Postcode", "Plaats", "KvK-nummer")
        rows = [header]
        for number, cents in self.open_cents.items():
            n = int(number[1:])
            values = {
                "Relatiecode": f"D{n % 40:03d}",
                "Naam": f"Klant {n % 40} B.V.",
                "Soort": "Zakelijk",
                "E-mail": f"debiteur{n % 40}@example.nl",
                "Taal": "nl",
                "Factuurnummer": number,
                "Factuurdatum": "01-10-2026",
                "Vervaldatum": "31-10-2026",
                "Bedrag": _euro(100_000 + 37 * n),
                "Openstaand": _euro(cents),
                "Valuta": "EUR",
                "Betalingskenmerk": "",
            }
            rows.append([values[column] for column in header])
        return rows

    def change(self, rng: random.Random) -> None:
        """Some invoices partly paid, some paid in full (gone from the export)."""
        chosen = rng.sample(sorted(self.open_cents), 2 * PER_ROUND)
        for number in chosen[:PER_ROUND]:
            paid = rng.randint(1, self.open_cents[number] - 1)
            self.open_cents[number] -= paid
            self.paid_cents += paid
            self.partial += 1
        for number in chosen[PER_ROUND:]:
            self.paid_cents += self.open_cents.pop(number)
            self.closed += 1


def _euro(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d}"


def _sync(url: str, export: Path, start: Any) -> None:
    """One process: open the store (migrating a fresh one) and sync the export once."""
    start.wait()
    store = open_store(url)
    try:
        result = csv_sync(store, system_clock, export)
    finally:
        store.dispose()
    sys.exit(0 if result.ok else 1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL no store has been created at yet: the first round also races the migrations."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'debsync.db'}"
        return
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_concurrent_syncs_record_each_payment_and_closing_once(
    store_url: str, tmp_path: Path
) -> None:
    rng = random.Random(20261201)
    book = Book()
    export = tmp_path / "open-items.csv"
    fork = multiprocessing.get_context("fork")  # the imports are paid once, not per process
    for round_ in range(ROUNDS):
        if round_:
            book.change(rng)
        write(export, book.rows())
        start = fork.Event()
        children = [
            fork.Process(target=_sync, args=(store_url, export, start)) for _ in range(PROCESSES)
        ]
        for child in children:
            child.start()
        start.set()
        for child in children:
            child.join(timeout=120)
        codes = [child.exitcode for child in children]
        assert codes == [0] * PROCESSES, f"round {round_}: exit codes {codes}"

    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            kinds = dict(
                conn.execute(
                    sa.select(events.c.kind, sa.func.count()).group_by(events.c.kind)
                ).all()
            )
            paid = conn.execute(sa.select(sa.func.sum(payments.c.amount_minor))).scalar_one()
    finally:
        store.dispose()
    recorded = {
        "opened": kinds.get(EventKind.INVOICE_OPENED, 0),
        "partially_paid": kinds.get(EventKind.INVOICE_PARTIALLY_PAID, 0),
        "closed": kinds.get(EventKind.INVOICE_CLOSED, 0),
        "paid": Decimal(paid or 0) / 100,
    }
    expected = {
        "opened": INVOICES,
        "partially_paid": book.partial,
        "closed": book.closed,
        "paid": Decimal(book.paid_cents) / 100,
    }
    assert recorded == expected


def test_sync_of_an_instance_being_synced_says_so_and_exits_0(tmp_path: Path) -> None:
    """While another process holds the instance, `debsync sync` does nothing and records no
    failure (no run, no error in the connector state)."""
    url = f"sqlite:///{tmp_path / 'debsync.db'}"
    write(tmp_path / "open-items.csv", Book().rows())
    config = tmp_path / "connectors.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n\n[connectors.books]\ntype = "csv"\npath = "open-items.csv"\n',
        encoding="utf-8",
    )
    store = open_store(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEBSYNC_")}
    try:
        with sync_lock(store.engine, "books") as held:
            assert held
            child = subprocess.run(
                [sys.executable, "-m", "debsync", "--config", str(config), "sync", "books"],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
        with store.engine.connect() as conn:
            runs = conn.execute(sa.select(sa.func.count()).select_from(sync_runs)).scalar_one()
            state = conn.execute(sa.select(connector_state)).all()
    finally:
        store.dispose()
    assert child.returncode == 0, child.stdout + child.stderr
    assert "books: already syncing in another process" in child.stderr
    assert runs == 0 and state == []
