"""faces: consent records, encrypted templates, per-site gallery versions

Revision ID: 0003_faces
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idsvc.core.db

revision = "0003_faces"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "face_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("given_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=80), nullable=False),
        sa.Column("recorded_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_face_consents_site_id", "face_consents", ["site_id"])
    op.create_index("ix_face_consents_person_id", "face_consents", ["person_id"])
    op.create_table(
        "face_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=False),
        sa.Column("pack", sa.String(length=64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("images_used", sa.Integer(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consent_id"], ["face_consents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person_id", "pack"),
    )
    op.create_index("ix_face_templates_site_id", "face_templates", ["site_id"])
    op.create_index("ix_face_templates_person_id", "face_templates", ["person_id"])
    op.create_index("ix_face_templates_consent_id", "face_templates", ["consent_id"])
    op.create_table(
        "face_gallery_versions",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id"),
    )


def downgrade() -> None:
    op.drop_table("face_gallery_versions")
    op.drop_table("face_templates")
    op.drop_table("face_consents")
