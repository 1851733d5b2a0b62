"""registry: a site's plan image and its doors' places on it (the console's map)

Revision ID: 0019_site_plans
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idsvc.core.db

revision = "0019_site_plans"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_plans",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=True),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("door_positions", sa.JSON(), nullable=False),
        sa.Column("updated_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id"),
    )


def downgrade() -> None:
    op.drop_table("site_plans")
