"""registry: doors get a face policy (face_mode)

Existing doors get face_and_pass (1:1 against a presented pass): a door's 1:N face search is now
configured explicitly, and face_only is refused where the face pack cannot keep strangers out.

Revision ID: 0011_door_face_mode
Revises: 0007_people_sealed
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_door_face_mode"
down_revision = "0007_people_sealed"
branch_labels = None
depends_on = None

FACE_MODES = ("off", "face_and_pass", "face_and_code", "face_only")


def upgrade() -> None:
    with op.batch_alter_table("doors") as batch:
        batch.add_column(
            sa.Column(
                "face_mode",
                sa.Enum(*FACE_MODES, name="facemode", native_enum=False, length=32),
                nullable=False,
                server_default="face_and_pass",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("doors") as batch:
        batch.drop_column("face_mode")
