"""The store: migrations match the schema, SQLite runs in WAL mode, timestamps stay UTC."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st

from debsync.store import Store, migrate, open_store
from debsync.store.driver import json_text
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


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from([Decimal("1.00"), date(2026, 1, 1)]),  # not JSON: both must refuse
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.dictionaries(st.text(max_size=6) | st.integers() | st.booleans(), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=1000, deadline=None)
@given(_json_values)
def test_json_columns_hold_json_dumps_text(value: Any) -> None:
    """The store writes a JSON document as the text ``json.dumps`` gives, or refuses what it
    refuses, with the same error."""
    try:
        expected = json.dumps(value)
    except TypeError as exc:
        with pytest.raises(TypeError, match=re.escape(str(exc))):
            json_text(value)
        return
    assert json_text(value) == expected


def test_a_json_column_stores_json_dumps_text(store: Store) -> None:
    cursor = {"page": 2, "since": "2026-12-01T00:00:00Z", "naam": "Café ‘t Hoekje", "x": 1.5}
    with store.engine.begin() as conn:
        conn.execute(sa.insert(connector_state).values(instance="x", type="csv", cursor=cursor))
        stored = conn.execute(sa.select(sa.cast(connector_state.c.cursor, sa.Text))).scalar_one()
    assert stored == json.dumps(cursor)
