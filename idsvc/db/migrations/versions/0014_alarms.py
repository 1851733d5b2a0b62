"""alarms: the alarm core, its held conditions, sensors and HJ 212 emission data

Revision ID: 0014_alarms
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idsvc.core.db

revision = "0014_alarms"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("cleared_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("severity", sa.Enum("critical", "major", "minor", "warning", name="severity", native_enum=False, length=16), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("door_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("sensor_id", sa.Integer(), nullable=True),
        sa.Column("first_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("acknowledged_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=80), nullable=True),
        sa.Column("cleared_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=80), nullable=True),
        sa.Column("clear_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_alarms_active_source_type", "alarms", ["source", "type"], unique=True, sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_index("ix_alarms_site_last", "alarms", ["site_id", "last_at"])
    op.create_index("ix_alarms_unit", "alarms", ["unit_id"])
    op.create_table(
        "alarm_conditions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("since", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("hold_s", sa.Float(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("raised", sa.Boolean(), nullable=False),
        sa.Column("signal", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "type"),
    )
    op.create_table(
        "sensors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("family", sa.Enum("zigbee2mqtt", "tasmota", "hj212", name="sensorfamily", native_enum=False, length=16), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("smoke", "gas", "carbon_monoxide", "water_leak", "multi", "electrical_fire", "emission_station", name="sensorkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("silence_s", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("last_seen_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("sealed_password", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "code"),
    )
    for column in ("site_id", "building_id", "unit_id", "device_id"):
        op.create_index(f"ix_sensors_{column}", "sensors", [column])
    op.create_table(
        "sensor_gateways",
        sa.Column("device_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("last_contact_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_table(
        "emission_records",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("cn", sa.String(length=4), nullable=False),
        sa.Column("data_time", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("pollutant", sa.String(length=16), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("flag", sa.String(length=4), nullable=True),
        sa.Column("received_at", idsvc.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["sensor_id"], ["sensors.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sensor_id", "cn", "data_time", "pollutant"),
    )
    op.create_index("ix_emission_records_sensor_time", "emission_records", ["sensor_id", "data_time"])


def downgrade() -> None:
    op.drop_index("ix_emission_records_sensor_time", table_name="emission_records")
    op.drop_table("emission_records")
    op.drop_table("sensor_gateways")
    for column in ("site_id", "building_id", "unit_id", "device_id"):
        op.drop_index(f"ix_sensors_{column}", table_name="sensors")
    op.drop_table("sensors")
    op.drop_table("alarm_conditions")
    op.drop_index("ix_alarms_unit", table_name="alarms")
    op.drop_index("ix_alarms_site_last", table_name="alarms")
    op.drop_index("uq_alarms_active_source_type", table_name="alarms")
    op.drop_table("alarms")
