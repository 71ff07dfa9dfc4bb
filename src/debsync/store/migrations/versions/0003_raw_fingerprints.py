"""Fingerprints of the raw input each debtor and invoice was built from (connectors.base.Previous).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("debtors", "invoices"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("raw_fingerprint", sa.LargeBinary(length=16), nullable=True))


def downgrade() -> None:
    for table in ("debtors", "invoices"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("raw_fingerprint")
