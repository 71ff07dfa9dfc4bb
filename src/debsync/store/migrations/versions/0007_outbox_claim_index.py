"""An index on the outbox by state and id: a claim reads each state's oldest rows off it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_outbox_state_id"), "outbox", ["state", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_state_id"), table_name="outbox")
