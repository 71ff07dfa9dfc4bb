"""The store: migrations match the schema, SQLite runs in WAL mode, timestamps stay UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from debsync.store import Store, migrate, open_store
from debsync.store.schema import connector_state, metadata


def test_migrations_create_exactly_the_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_migrating_twice_is_a_no_op(store: Store) -> None:
    migrate(store.engine)
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0007"


def test_sqlite_uses_wal_and_creates_its_folder(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'nested' / 'state' / 'debsync.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.dispose()


def test_timestamps_are_stored_and_read_as_utc(store: Store) -> None:
    amsterdam_summer = timezone(timedelta(hours=2))
    moment = datetime(2026, 7, 1, 14, 0, tzinfo=amsterdam_summer)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(connector_state).values(instance="x", type="csv", last_success_at=moment)
        )
        stored = conn.execute(sa.select(connector_state.c.last_success_at)).scalar_one()
    assert stored == moment and stored.tzinfo == UTC and stored.hour == 12
