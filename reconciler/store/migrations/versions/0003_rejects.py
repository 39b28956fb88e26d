"""Rejected rows: what a run refused, with the rule and column that refused it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rejects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_key", sa.Text),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("column_name", sa.String(128), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("content", Json),
    )
    op.create_index("ix_rejects_run", "rejects", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_rejects_run", "rejects")
    op.drop_table("rejects")
