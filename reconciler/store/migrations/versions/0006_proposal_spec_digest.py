"""Proposals: the digest of the spec field each proposal was made against.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proposals") as batch:
        batch.add_column(sa.Column("spec_digest", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("proposals") as batch:
        batch.drop_column("spec_digest")
