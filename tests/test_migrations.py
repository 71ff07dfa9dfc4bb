"""Migrations are atomic: a process SIGKILLed while creating or upgrading the schema leaves a
store that the next start opens and brings to head; processes starting together wait for each
other. Also the store's privacy settings: errors carry no parameters, the SQLite file is its
owner's only."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from debsync.store import Store, _alembic_config, create_engine, open_store
from debsync.store.schema import connector_state, metadata

SCRIPTS = ScriptDirectory.from_config(_alembic_config())
REVISIONS = [s.revision for s in reversed(list(SCRIPTS.walk_revisions()))]
HEAD = REVISIONS[-1]
STARTS: list[str | None] = [None, *REVISIONS[:-1]]  # a fresh file, then every earlier revision

KILLS = 20

CHILD = """
import os, signal, sys
import sqlalchemy as sa
from debsync.store import open_store

url, kill_at, when = sys.argv[1], int(sys.argv[2]), sys.argv[3]
statements = 0

def count(*_args):
    global statements
    statements += 1
    if statements == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

sa.event.listen(sa.engine.Engine, when + "_cursor_execute", count)
open_store(url).dispose()
print(statements)
"""
"""Opens the store and SIGKILLs itself just before (or after) its ``kill_at``-th statement, so
the kills land at every point of a migration, between a statement and the commit included."""


def _at_revision(path: Path, revision: str | None) -> Path:
    """A SQLite file migrated up to ``revision`` (an empty file for None)."""
    engine = create_engine(f"sqlite:///{path}")
    engine.connect().close()
    if revision is not None:
        config = _alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    engine.dispose()
    return path


def _open(url: str, kill_at: int, when: str = "before") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, url, str(kill_at), when],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assert_at_head(url: str) -> None:
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        store.dispose()


def test_sigkill_during_fresh_starts_and_upgrades_leaves_a_store_that_opens(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261201)
    prepared = {rev: _at_revision(tmp_path / f"at-{rev}.db", rev) for rev in STARTS}
    statements = {}  # how many statements opening the store runs from each start
    for rev, path in prepared.items():
        shutil.copy(path, tmp_path / "count.db")
        statements[rev] = int(_open(f"sqlite:///{tmp_path / 'count.db'}", 0).stdout)
    for n in range(KILLS):
        start = STARTS[n % len(STARTS)]
        path = tmp_path / f"kill-{n}.db"
        shutil.copy(prepared[start], path)
        url = f"sqlite:///{path}"
        killed = _open(url, rng.randint(1, statements[start]), rng.choice(["before", "after"]))
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        _assert_at_head(url)


def test_a_start_while_another_process_writes_a_fresh_file_waits_instead_of_failing(
    tmp_path: Path,
) -> None:
    """Switching a fresh file to WAL while another connection holds its write lock made
    SQLite answer "database is locked" at once, busy timeout or not (CI saw one of three
    concurrent first syncs exit 1); the start now waits for the writer."""
    path = tmp_path / "debsync.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # the write lock, as a migrating process holds it
    releaser = threading.Timer(0.3, writer.execute, ["COMMIT"])
    releaser.start()
    try:
        store = open_store(f"sqlite:///{path}")
    finally:
        releaser.join()
        writer.close()
    store.dispose()
    _assert_at_head(f"sqlite:///{path}")


def test_store_errors_carry_no_parameters(store: Store) -> None:
    """A failing statement's error names the statement, never the debtor data bound to it."""
    secret = "J. de Vries, jdevries@example.nl, NL91ABNA0417164300"
    with store.engine.begin() as conn:
        conn.execute(sa.insert(connector_state).values(instance="books", type="csv"))
    with pytest.raises(sa.exc.IntegrityError) as failure, store.engine.begin() as conn:
        conn.execute(
            sa.insert(connector_state).values(instance="books", type="csv", last_error=secret)
        )
    text = str(failure.value)
    assert "INSERT INTO connector_state" in text
    assert secret not in text and "NL91ABNA0417164300" not in text
    assert "parameters hidden" in text


def test_sqlite_file_and_its_wal_are_the_owners_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = open_store(f"sqlite:///{tmp_path / 'debsync.db'}")
        with store.engine.begin() as conn:
            conn.execute(sa.insert(connector_state).values(instance="books", type="csv"))
        files = sorted(tmp_path.glob("debsync.db*"))
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        store.dispose()
    finally:
        os.umask(old)
    assert {"debsync.db", "debsync.db-wal", "debsync.db-shm"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes
