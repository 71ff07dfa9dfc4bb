"""Migrations are atomic: a process SIGKILLed while creating or upgrading the schema leaves a
store that the next start opens and brings to head. Also the store's privacy settings: errors
carry no parameters, the SQLite file is its owner's only."""

from __future__ import annotations

import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
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
import sys
from debsync.store import open_store
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
open_store(sys.argv[1]).dispose()
"""


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


def _killed_while_opening(url: str, rng: random.Random, window: float) -> None:
    """Start a process that opens the store, and SIGKILL it a random moment into opening."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "ready\n"  # imports done: the kill lands in migrating
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(rng.uniform(0, window))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)


def _assert_at_head(url: str) -> None:
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        store.dispose()


def _opening_time(tmp_path: Path) -> float:
    """How long a fresh start's migrations take here: the window the kills are spread over."""
    path = tmp_path / "timing.db"
    started = time.perf_counter()
    open_store(f"sqlite:///{path}").dispose()
    return (time.perf_counter() - started) * 1.5


def test_sigkill_during_fresh_starts_and_upgrades_leaves_a_store_that_opens(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261201)
    window = _opening_time(tmp_path)
    prepared = {rev: _at_revision(tmp_path / f"at-{rev}.db", rev) for rev in STARTS}
    for n in range(KILLS):
        start = STARTS[n % len(STARTS)]
        path = tmp_path / f"kill-{n}.db"
        shutil.copy(prepared[start], path)
        url = f"sqlite:///{path}"
        _killed_while_opening(url, rng, window)
        _assert_at_head(url)


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
