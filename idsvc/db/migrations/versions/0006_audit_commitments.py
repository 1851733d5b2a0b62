"""audit: canonical UTC times and salted commitments to personal fields (hash scheme 2); re-hash the trail

Revision ID: 0006_audit_commitments
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_audit_commitments"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("personal_salt", sa.LargeBinary(), nullable=True))
    op.add_column("audit_events", sa.Column("personal_digest", sa.String(length=64), nullable=True))
    op.add_column("audit_events", sa.Column("subject", sa.String(length=40), nullable=True))
    op.add_column("audit_events", sa.Column("pseudonymised_in", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
    op.create_index("ix_audit_subject_at", "audit_events", ["subject", "at"])
    # Imported here, not at the top: the re-hash is scheme 2 as this revision defines it.
    from idsvc.audit.rehash import rehash

    rehash(op.get_bind())


def downgrade() -> None:
    # Scheme-1 hashes are not restored: a downgraded trail no longer verifies with the old code.
    op.drop_index("ix_audit_subject_at", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch:
        for column in ("pseudonymised_in", "subject", "personal_digest", "personal_salt"):
            batch.drop_column(column)
