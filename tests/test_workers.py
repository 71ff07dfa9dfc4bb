"""The workers registry and `debsync workers`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from debsync import __version__, workers
from debsync.cli import app
from debsync.outbox.table import worker_id
from debsync.store import Store, open_store
from debsync.store.schema import outbox

NOW = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def test_a_worker_lives_while_it_beats_and_is_dead_after_its_lease(store: Store) -> None:
    me, other = worker_id(), worker_id()
    workers.register(store, me, NOW)
    workers.register(store, other, NOW)
    workers.heartbeat(store, me, NOW + LEASE, ["books", "acme"])
    alive = workers.live(store, NOW + LEASE, LEASE)
    assert {w.id for w in alive} == {me, other}  # the other's last beat is exactly a lease old
    later = NOW + LEASE + timedelta(seconds=1)
    (mine,) = workers.live(store, later, LEASE)
    assert mine.id == me and mine.syncing == ["acme", "books"] and mine.version == __version__
    assert mine.host == me.split(":")[0] and mine.pid == int(me.split(":")[1])
    assert [w.id for w in workers.dead(store, later, LEASE)] == [other]
    workers.mark_stopping(store, me)
    assert workers.live(store, later, LEASE)[0].stopping
    workers.remove(store, [me, other])
    assert workers.live(store, later, LEASE) == workers.dead(store, later, LEASE) == []


def test_a_heartbeat_counts_the_outbox_rows_the_worker_has_leased(store: Store) -> None:
    me = worker_id()
    workers.register(store, me, NOW)
    with store.engine.begin() as conn:
        ids = [
            conn.execute(
                sa.insert(outbox)
                .values(
                    key=f"k{n}",
                    instance="books",
                    debtor_id=f"d{n}",
                    step="reminder",
                    channel="email",
                    legal_copy=False,
                    requires_approval=False,
                    state="sending",
                    planned_on=NOW.date(),
                    plan={},
                    invoice_ids=[],
                    attempts=1,
                    created_at=NOW,
                    updated_at=NOW,
                    lease_owner=me,
                    lease_until=NOW + timedelta(seconds=30 * n),
                )
                .returning(outbox.c.id)
            ).scalar_one()
            for n in range(3)
        ]
    assert len(ids) == 3
    workers.heartbeat(store, me, NOW, [])
    assert workers.live(store, NOW, LEASE)[0].sending == 2  # one lease has already run out


def test_debsync_workers_lists_the_live_ones(tmp_path: Path) -> None:
    db = tmp_path / "debsync.db"
    config = tmp_path / "connectors.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n[daemon]\nlease = "2m"\n')
    store = open_store(f"sqlite:///{db}")
    me, gone = worker_id(), worker_id()
    workers.register(store, gone, NOW - timedelta(minutes=10))
    workers.register(store, me, NOW - timedelta(minutes=5))
    workers.heartbeat(store, me, NOW - timedelta(minutes=1), ["books"])
    store.dispose()
    runner = CliRunner()
    env = {"DEBSYNC_NOW": "2026-12-14T10:00:00+01:00"}
    listed = runner.invoke(app, ["--config", str(config), "workers", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.stdout)["workers"]
    assert entry["id"] == me and entry["syncing"] == ["books"] and entry["sending"] == 0
    assert entry["heartbeat_at"] == "2026-12-14T08:59:00+00:00"
    table = runner.invoke(app, ["--config", str(config), "workers"], env=env)
    assert table.exit_code == 0, table.output
    assert "14-12-2026 09:55" in table.stdout and "14-12-2026 09:59" in table.stdout  # Amsterdam
    assert "books" in table.stdout
    later = {"DEBSYNC_NOW": "2027-01-01T00:00:00Z"}
    none = runner.invoke(app, ["--config", str(config), "workers"], env=later)
    assert none.exit_code == 0 and "No live workers" in none.stdout
