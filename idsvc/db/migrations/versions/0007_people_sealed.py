"""people: personal fields sealed with blind indexes, registration fields, audit pseudonyms, erasure; grants.ended_at

Existing names, phones and external references are sealed under the configured master key
(``IDSVC_MASTER_KEY``, as ``idsvc serve`` uses it) and their clear columns dropped.

Revision ID: 0007_people_sealed
Revises: 0006_audit_commitments
"""

from __future__ import annotations

import secrets
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import context, op

import idsvc.core.db

revision = "0007_people_sealed"
down_revision = "0006_audit_commitments"
branch_labels = None
depends_on = None

_people = sa.table(
    "people", sa.column("id", sa.Integer), sa.column("pseudonym", sa.String), sa.column("display_name", sa.String), sa.column("phone", sa.String),
    sa.column("external_ref", sa.String), sa.column("sealed", sa.LargeBinary), sa.column("phone_index", sa.String),
    sa.column("external_ref_index", sa.String), sa.column("registration_filled", sa.JSON), sa.column("audit_pseudonym", sa.String),
)
_grants = sa.table("grants", sa.column("status", sa.String), sa.column("ended_at", idsvc.core.db.UTCDateTime()), sa.column("updated_at", idsvc.core.db.UTCDateTime()))


def _sealer():  # type: ignore[no-untyped-def]
    sealer = context.config.attributes.get("sealer")
    if sealer is None:
        from idsvc.config import Settings
        from idsvc.core.sealing import Sealer

        settings = Settings()
        sealer = Sealer.from_config(settings.master_key, settings.data_dir)
    return sealer


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("phone_index", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("external_ref_index", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("registration_filled", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("audit_pseudonym", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("contact_deleted_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("erased_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    rows = list(bind.execute(sa.select(_people.c.id, _people.c.pseudonym, _people.c.display_name, _people.c.phone, _people.c.external_ref)))
    if rows:
        from idsvc.registry.personal import PersonalRecord, seal_record

        sealer = _sealer()
        updates = []
        for row in rows:
            person = SimpleNamespace(pseudonym=row.pseudonym)
            seal_record(sealer, person, PersonalRecord(display_name=row.display_name, phone=row.phone, external_ref=row.external_ref))  # type: ignore[arg-type]
            updates.append({
                "i": row.id, "s": person.sealed, "pi": person.phone_index, "ei": person.external_ref_index, "rf": person.registration_filled,
                "ap": secrets.token_hex(16),
            })
        bind.execute(
            _people.update().where(_people.c.id == sa.bindparam("i")).values(
                sealed=sa.bindparam("s"), phone_index=sa.bindparam("pi"), external_ref_index=sa.bindparam("ei"),
                registration_filled=sa.bindparam("rf"), audit_pseudonym=sa.bindparam("ap"),
            ),
            updates,
        )
    with op.batch_alter_table("people") as batch:
        batch.alter_column("registration_filled", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("display_name")
        batch.drop_column("phone")
        batch.drop_column("external_ref")
        batch.create_unique_constraint("uq_people_audit_pseudonym", ["audit_pseudonym"])
        batch.create_index("ix_people_site_phone", ["site_id", "phone_index"])
        batch.create_index("ix_people_site_external_ref", ["site_id", "external_ref_index"])

    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("ended_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=True))
        batch.create_index("ix_grants_site_from", ["site_id", "valid_from"])
        batch.create_index("ix_grants_site_ended", ["site_id", "ended_at"])
    # A revoked grant ended when it was last changed: the best record there is of the departure.
    bind.execute(_grants.update().where(_grants.c.status == "revoked").values(ended_at=_grants.c.updated_at))


def downgrade() -> None:
    raise NotImplementedError("sealed personal fields are not unsealed by a downgrade; restore the backup taken before the upgrade")
