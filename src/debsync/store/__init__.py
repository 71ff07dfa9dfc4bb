"""The store: SQLite (default, WAL) or PostgreSQL, migrated to the latest schema on open."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from debsync.errors import StoreError
from debsync.store.driver import json_text
from debsync.store.locks import lock_path, migration_lock

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Store:
    """An open, migrated database."""

    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()


BUSY_TIMEOUT = 10.0  # seconds a connection waits for another process's lock


def _wal(cursor: Any) -> None:
    """Put the file in WAL mode (persistent: later connections find it set). Switching needs
    an exclusive lock, and SQLite answers "database is locked" at once, without its busy
    handler, when that would deadlock with a process starting on the same fresh file; so
    this waits and tries again, as long as a busy connection would."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    delay = 0.005
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    _wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable under WAL against process crashes
    cursor.close()


def _create_private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (it holds debtors' personal data);
    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = os.umask(0o077)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    finally:
        os.umask(old)


def create_engine(url: str) -> Engine:
    """An engine with debsync's connection settings; the SQLite file is created 0600 in a
    created folder. Errors never carry the statement's parameters (debtors' personal data)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _create_private_file(Path(parsed.database))
    engine = sa.create_engine(parsed, hide_parameters=True, json_serializer=json_text)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _revision(connection: Connection) -> str | None:
    revision = MigrationContext.configure(connection).get_current_revision()
    connection.rollback()  # alembic then begins each migration's transaction itself
    return revision


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _migration_engine(engine: Engine) -> Engine:
    """The engine migrations run on. pysqlite neither begins a transaction before DDL nor
    lets SQLAlchemy do it, so a migration killed half-way stayed half-applied; this engine
    turns the driver's transaction handling off and begins every transaction itself
    (SQLAlchemy's pysqlite "transactional DDL" recipe), so each migration commits whole or
    not at all. The application's engine keeps pysqlite's lazy begin that its writers use."""
    if engine.dialect.name != "sqlite" or lock_path(engine, "migrate") is None:
        return engine
    migrating = sa.create_engine(engine.url, poolclass=NullPool, hide_parameters=True)

    def connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, record)
        dbapi_connection.isolation_level = None

    sa.event.listen(migrating, "connect", connect)
    sa.event.listen(migrating, "begin", _begin_immediate)
    return migrating


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision (a no-op when it is already there): each
    migration in its own transaction, one migrating process at a time."""
    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        if _revision(connection) == head:
            return
    with migration_lock(engine):
        migrating = _migration_engine(engine)
        try:
            with migrating.connect() as connection:
                if _revision(connection) == head:  # another process migrated while we waited
                    return
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        finally:
            if migrating is not engine:
                migrating.dispose()


def open_store(url: str) -> Store:
    """Open the database at ``url`` and migrate it; raises :class:`StoreError` with the cause."""
    try:
        engine = create_engine(url)
        migrate(engine)
    except (SQLAlchemyError, OSError) as exc:
        safe = sa.make_url(url).render_as_string(hide_password=True)
        raise StoreError(f"cannot open the store at {safe}: {exc}") from exc
    return Store(engine)
