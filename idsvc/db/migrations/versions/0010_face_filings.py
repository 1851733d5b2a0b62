"""face filings: the operator's confirmation that the deployment was filed (100,000 people)

Revision ID: 0010_face_filings
Revises: 0008_consent_records
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idsvc.core.db

revision = "0010_face_filings"
down_revision = "0008_consent_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_filings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("people_enrolled", sa.Integer(), nullable=False),
        sa.Column("confirmed_by", sa.String(length=80), nullable=False),
        sa.Column("confirmed_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("face_filings")
