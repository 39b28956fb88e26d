"""Proposals: clients' edits the AgentConfig spec could take, and the decisions on them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("client", sa.String(32)),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("item_key", sa.Text, nullable=False),
        sa.Column("canonical", sa.String(400), nullable=False),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("file_value", Json),
        sa.Column("spec_value", Json),
        sa.Column("patch", Json),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("reason", sa.Text),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by", sa.String(128)),
    )
    op.create_index("ix_proposals_target", "proposals", ["kind", "namespace", "name", "status"])


def downgrade() -> None:
    op.drop_index("ix_proposals_target", table_name="proposals")
    op.drop_table("proposals")
