"""scheduled jobs: the state of the periodic jobs run inside the service (one node per job)

Revision ID: 0009_scheduled_jobs
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idsvc.core.db

revision = "0009_scheduled_jobs"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_started_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_node", sa.String(length=120), nullable=True),
        sa.Column("last_ok", sa.Boolean(), nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("scheduled_jobs")
