"""Schedule state per SyncJob: last and next run, runtime overrides, missed runs, retries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("kind", sa.String(63), primary_key=True),
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("last_schedule_time", sa.DateTime(timezone=True)),
        sa.Column("next_run_time", sa.DateTime(timezone=True)),
        sa.Column("suspended", sa.Boolean),
        sa.Column("override", Json),
        sa.Column("missed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_missed_time", sa.DateTime(timezone=True)),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("retry_at", sa.DateTime(timezone=True)),
        sa.Column("spec_hash", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedules")
