"""Alembic environment: debsync always passes an open connection (see store.migrate).

Each migration runs in its own transaction, also on SQLite, whose DDL is transactional although
alembic assumes it is not: a migration killed half-way leaves no table or column behind, and
``alembic_version`` always names the schema that is there."""

from __future__ import annotations

from alembic import context

from debsync.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    transaction_per_migration=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
