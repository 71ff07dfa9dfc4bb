"""OAuth tokens (encrypted); per invoice a failed direct-debit collection and whether the
bookkeeping program's own workflow reminds it; when a debtor's personal data was purged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("instance", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance"),
    )
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(
            sa.Column(
                "direct_debit_failed", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(
            sa.Column("reminded_by_source", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("debtors") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("debtors") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("reminded_by_source")
        batch.drop_column("direct_debit_failed")
    op.drop_table("tokens")
