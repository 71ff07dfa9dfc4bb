"""An unchanged CSV export (the same bytes, settings and day as the last complete snapshot) is
not read again: the run repeats the last snapshot, its rejects included, and is recorded like
any other run."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from debsync.store import Store
from debsync.store.reports import instance_status
from debsync.store.schema import connector_state, invoices, sync_runs

from csv_helpers import sync, write

HEADER = ["Relatiecode", "Naam", "E-mail", "Factuurnummer", "Factuurdatum", "Vervaldatum"]
ROWS = [
    [*HEADER, "Bedrag", "Openstaand"],
    ["1", "Klant B.V.", "info@klant.nl", "F1", "01-10-2026", "31-10-2026", "121,00", "121,00"],
    ["2", "Puk B.V.", "geen-adres", "F2", "01-10-2026", "31-10-2026", "50,00", "50,00"],
    ["3", "Kees B.V.", "", "F3", "01-10-2026", "31-02-2026", "9,00", "9,00"],
]
READ = "row(s) after the header"
"""The csv reader's summary line, logged once per file it reads."""


def rejects(result: Any) -> list[tuple[str, str, str, str | None, bool]]:
    return [(r.kind, r.ref, r.reason, r.invoice_id, r.dropped) for r in result.rejects]


def status_rejects(store: Store) -> list[tuple[str, str]]:
    (status,) = instance_status(store, {"books": "csv"}, date(2026, 11, 22))
    return [(r.ref, r.reason) for r in status.rejects]


def test_an_unchanged_export_repeats_the_last_snapshot(
    store: Store, clock: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "open.csv", ROWS)
    caplog.set_level(logging.INFO)
    first = sync(store, clock, path)
    shown = status_rejects(store)
    assert first.ok and READ in caplog.text and len(first.rejects) == 2 and shown
    caplog.clear()
    clock.now += timedelta(minutes=15)

    again = sync(store, clock, path)

    assert again.ok and READ not in caplog.text  # not read again
    assert rejects(again) == rejects(first) and status_rejects(store) == shown
    assert "repaired 1 debtor record(s)" in caplog.text  # logged once per kind, as before
    assert (again.counts.writes, again.counts.rejects) == (0, 2)
    assert again.counts.invoices_seen == first.counts.invoices_seen == 2
    with store.engine.connect() as conn:
        runs = conn.execute(sa.select(sync_runs.c.status).order_by(sync_runs.c.id)).scalars()
        state = conn.execute(sa.select(connector_state)).one()
        still_open = conn.execute(
            sa.select(invoices.c.external_id).where(invoices.c.state == "open")
        ).scalars()
        assert list(runs) == ["ok", "ok"]
        assert sorted(still_open) == ["F1", "F2"]
    assert state.last_run_id == again.run_id and state.last_success_at == clock.now


def test_a_changed_export_or_setting_is_read_in_full(
    store: Store, clock: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "open.csv", ROWS)
    sync(store, clock, path)
    write(path, ROWS[:2] + ROWS[3:])  # F2 paid
    caplog.set_level(logging.INFO)

    changed = sync(store, clock, path)
    assert changed.ok and READ in caplog.text and changed.counts.invoices_closed == 1
    caplog.clear()
    other_term = sync(store, clock, path, default_payment_term_days=14)

    assert other_term.ok and READ in caplog.text and len(other_term.rejects) == 1


def test_a_failed_run_in_between_keeps_the_last_snapshot_rejects(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    path = write(tmp_path / "open.csv", ROWS)
    first = sync(store, clock, path)
    lock = tmp_path / "open.csv.lock"
    lock.touch()
    failed = sync(store, clock, path)
    lock.unlink()

    again = sync(store, clock, path)

    assert not failed.ok and again.ok and rejects(again) == rejects(first)
