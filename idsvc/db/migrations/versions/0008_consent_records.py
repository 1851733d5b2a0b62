"""face consents: purpose codes, the consent text's version and language

Consents recorded before keep their free-text purpose in ``legacy_purpose``, count as
``face_access`` (what they were recorded for: enrolment), with text version "unrecorded" and language
"und" (undetermined, BCP 47): the record says honestly that these were not captured.

Revision ID: 0008_consent_records
Revises: 0003_faces
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_consent_records"
down_revision = "0003_faces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("face_consents") as batch:
        batch.add_column(sa.Column("text_version", sa.String(length=40), nullable=False, server_default="unrecorded"))
        batch.add_column(sa.Column("language", sa.String(length=16), nullable=False, server_default="und"))
        batch.add_column(sa.Column("legacy_purpose", sa.String(length=200), nullable=True))
    consents = sa.table("face_consents", sa.column("purpose", sa.String), sa.column("legacy_purpose", sa.String))
    op.get_bind().execute(consents.update().values(legacy_purpose=consents.c.purpose, purpose="face_access"))
    with op.batch_alter_table("face_consents") as batch:
        batch.alter_column("text_version", server_default=None, existing_type=sa.String(length=40), existing_nullable=False)
        batch.alter_column("language", server_default=None, existing_type=sa.String(length=16), existing_nullable=False)
        batch.alter_column(
            "purpose", type_=sa.Enum("face_access", "face_offline", name="consentpurpose", native_enum=False, length=32),
            existing_type=sa.String(length=200), existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("face_consents") as batch:
        batch.alter_column("purpose", type_=sa.String(length=200), existing_nullable=False)
        batch.drop_column("legacy_purpose")
        batch.drop_column("language")
        batch.drop_column("text_version")
