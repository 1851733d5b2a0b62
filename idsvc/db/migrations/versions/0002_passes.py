"""passes: issuer keys, passes, trust and status versions

Revision ID: 0002_passes
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idsvc.core.db

revision = "0002_passes"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pass_issuer_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kid', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.Enum('root', 'issuer', name='keypurpose', native_enum=False, length=32), nullable=False),
    sa.Column('alg', sa.Integer(), nullable=False),
    sa.Column('public_der', sa.LargeBinary(), nullable=False),
    sa.Column('sealed_private', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.Enum('active', 'retired', 'withdrawn', name='keystatus', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', idsvc.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verify_until', idsvc.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kid')
    )
    op.create_table('pass_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trust_version', sa.Integer(), nullable=False),
    sa.Column('status_version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('passes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pass_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('pass_type', sa.Enum('resident', 'tenant', 'visitor', 'employee', 'vehicle', name='passtype', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('active', 'suspended', 'revoked', name='status', native_enum=False, length=32), nullable=False),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('status_index', sa.Integer(), nullable=False),
    sa.Column('kid', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('holder_key', sa.LargeBinary(), nullable=True),
    sa.Column('renewed_from_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('not_before', idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status_changed_at', idsvc.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['renewed_from_id'], ['passes.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pass_id'),
    sa.UniqueConstraint('status_index')
    )
    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_passes_kid'), ['kid'], unique=False)
        batch_op.create_index('ix_passes_person_status', ['person_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_passes_site_id'), ['site_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_passes_site_id'))
        batch_op.drop_index('ix_passes_person_status')
        batch_op.drop_index(batch_op.f('ix_passes_kid'))

    op.drop_table('passes')
    op.drop_table('pass_versions')
    op.drop_table('pass_issuer_keys')
