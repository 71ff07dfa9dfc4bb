"""Locks the store holds across processes and machines: one sync per instance at a time, one
migrating process at a time. Every lock dies with the process that holds it, so a SIGKILLed
sync or migration never leaves the store locked.

PostgreSQL: session-level advisory locks on a connection held for the lock's life. A lease row
claimed with ``FOR UPDATE SKIP LOCKED`` would need either an open transaction for the whole
sync (idle in transaction, cut by ``idle_in_transaction_session_timeout``) or an expiry that a
killed process leaves behind; an advisory lock is released by the server when its connection
dies. The key is a stable 64-bit hash of the schema and the name, so two stores sharing one
database in different schemas do not block each other.

SQLite: ``fcntl.flock`` on a lock file next to the database, one per instance. The kernel
releases it when the process dies; no write transaction is held, so other writers go on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def _key(schema: str, name: str) -> int:
    digest = hashlib.blake2b(f"debsync\0{schema}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_path(engine: Engine, name: str) -> Path | None:
    """The lock file for ``name`` next to a SQLite database; None for an in-memory one."""
    database = engine.url.database
    if database in (None, "", ":memory:"):
        return None
    return Path(f"{database}.{name}.lock")


@contextlib.contextmanager
def _file_lock(path: Path, *, wait: bool) -> Iterator[bool]:
    old = os.umask(0o077)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    finally:
        os.umask(old)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _advisory_lock(engine: Engine, name: str, *, wait: bool) -> Iterator[bool]:
    conn = engine.connect()
    try:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        key = _key(str(schema), name)
        if wait:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            held = True
        else:
            held = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one()
            )
        conn.commit()  # the lock is the session's; no transaction stays open while it is held
    except BaseException:
        conn.invalidate()
        conn.close()
        raise
    try:
        yield held
    finally:
        if held:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
            except sa.exc.SQLAlchemyError:
                conn.invalidate()  # a pooled connection must never keep the lock
        conn.close()


@contextlib.contextmanager
def store_lock(engine: Engine, name: str, *, wait: bool) -> Iterator[bool]:
    """Hold the store-wide lock ``name``; yields whether it is held. With ``wait`` it blocks
    until it is, otherwise another holder makes it yield False at once."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, name, wait=wait) as held:
            yield held
        return
    path = lock_path(engine, name)
    if path is None:  # an in-memory database lives in one connection of one process
        yield True
        return
    with _file_lock(path, wait=wait) as held:
        yield held


def sync_lock(engine: Engine, instance: str) -> contextlib.AbstractContextManager[bool]:
    """One sync of ``instance`` at a time, whoever starts it; yields False when another
    process (CLI, daemon, another machine) is syncing it."""
    return store_lock(engine, f"sync-{instance}", wait=False)


def migration_lock(engine: Engine) -> contextlib.AbstractContextManager[bool]:
    """One migrating process at a time; the others wait and find the schema migrated."""
    return store_lock(engine, "migrate", wait=True)
