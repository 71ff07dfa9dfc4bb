"""A partial index on the pause events, read on every plan and send.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PAUSE_EVENTS = sa.text("kind IN ('pause.started', 'pause.ended')")


def upgrade() -> None:
    op.create_index(
        "ix_events_pauses",
        "events",
        ["id"],
        sqlite_where=PAUSE_EVENTS,
        postgresql_where=PAUSE_EVENTS,
    )


def downgrade() -> None:
    op.drop_index("ix_events_pauses", table_name="events")
