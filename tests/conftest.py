"""Shared fixtures: stores on SQLite (always) and PostgreSQL (when a server is configured)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from debsync.store import Store, open_store

pytest_plugins = ["pytester"]

PG_ENV = "DEBSYNC_TEST_DATABASE_URL"
FIXED_NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


class FrozenClock:
    """An injectable clock tests can move forward."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def _postgres_store() -> Iterator[Store]:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against")
    # Each test gets a schema of its own, so tests never see each other's rows.
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    store = open_store(scoped.render_as_string(hide_password=False))
    try:
        yield store
    finally:
        store.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    """The store suite runs on both backends."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'debsync.db'}")
        yield s
        s.dispose()
    else:
        yield from _postgres_store()


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'debsync.db'}")
    yield s
    s.dispose()
