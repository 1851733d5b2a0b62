"""Tables of the alarm domain: alarms, pending conditions, sensors and emission data.

Like the audit trail, alarms name their door, unit, device or sensor by id without foreign keys:
the record of a forced door must outlive the door.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Enum, Float, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.core.db import Base, UTCDateTime, utcnow

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")
ACTIVE = text("cleared_at IS NULL")


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Severity(str, enum.Enum):
    critical = "critical"
    major = "major"
    minor = "minor"
    warning = "warning"


class Alarm(Base):
    __tablename__ = "alarms"
    __table_args__ = (
        # The rule "one active alarm per (source, type)" lives in the database, so two nodes (or two
        # uploads racing) cannot both create one: the loser's insert becomes a repeat.
        Index("uq_alarms_active_source_type", "source", "type", unique=True, sqlite_where=ACTIVE, postgresql_where=ACTIVE),
        Index("ix_alarms_site_last", "site_id", "last_at"),
        Index("ix_alarms_unit", "unit_id"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(48))
    severity: Mapped[Severity] = mapped_column(_enum(Severity))
    site_id: Mapped[int] = mapped_column(Integer)
    building_id: Mapped[int | None] = mapped_column(Integer)
    unit_id: Mapped[int | None] = mapped_column(Integer)
    door_id: Mapped[int | None] = mapped_column(Integer)
    device_id: Mapped[int | None] = mapped_column(Integer)
    sensor_id: Mapped[int | None] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=1)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_by: Mapped[str | None] = mapped_column(String(80))
    clear_reason: Mapped[str | None] = mapped_column(String(500))


class AlarmCondition(Base):
    """A condition seen but not yet an alarm (it must hold for ``hold_s`` and be seen ``repeats``
    times). In the database, so a restart neither forgets how long gas has been high nor raises twice."""

    __tablename__ = "alarm_conditions"
    __table_args__ = (UniqueConstraint("source", "type"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(48))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=1)
    hold_s: Mapped[float] = mapped_column(Float, default=0.0)
    repeats: Mapped[int] = mapped_column(Integer, default=1)
    raised: Mapped[bool] = mapped_column(Boolean, default=False)
    # What to raise once the condition is met: the signal's place, severity and detail.
    signal: Mapped[dict[str, Any]] = mapped_column(JSON)


class SensorFamily(str, enum.Enum):
    zigbee2mqtt = "zigbee2mqtt"
    tasmota = "tasmota"
    hj212 = "hj212"


class SensorKind(str, enum.Enum):
    smoke = "smoke"
    gas = "gas"
    carbon_monoxide = "carbon_monoxide"
    water_leak = "water_leak"
    multi = "multi"
    electrical_fire = "electrical_fire"
    emission_station = "emission_station"


class Sensor(Base):
    """A safety sensor or an emission station in a building (and, in housing, usually a unit).

    Its own table rather than a registry device: a sensor has no credentials of its own (a site's
    sensor ingest, which is a registry device, reports for it) and it needs a place (building/unit),
    a silence limit and last-seen state that doors' devices do not.
    """

    __tablename__ = "sensors"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"), index=True)
    # The registry device (a sensor ingest) that may report for this sensor; none for HJ 212 stations.
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # Zigbee2MQTT friendly name, Tasmota topic, HJ 212 MN
    name: Mapped[str] = mapped_column(String(200))
    family: Mapped[SensorFamily] = mapped_column(_enum(SensorFamily))
    kind: Mapped[SensorKind] = mapped_column(_enum(SensorKind))
    silence_s: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    online: Mapped[bool | None] = mapped_column(Boolean)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # HJ 212 access password, sealed with the master key (bound to the row id).
    sealed_password: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SensorGateway(Base):
    """A sensor ingest's last word. Its sensors' silence means something only while it is heard:
    when the ingest (or its link) is down, it is one ``sensor_gateway_offline`` alarm, not one
    ``sensor_offline`` per sensor."""

    __tablename__ = "sensor_gateways"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    site_id: Mapped[int] = mapped_column(Integer)
    last_contact_at: Mapped[datetime] = mapped_column(UTCDateTime)
    online: Mapped[bool] = mapped_column(Boolean, default=True)


class EmissionRecord(Base):
    """One pollutant's values in one HJ 212 data message; a re-sent message is stored once."""

    __tablename__ = "emission_records"
    __table_args__ = (UniqueConstraint("sensor_id", "cn", "data_time", "pollutant"), Index("ix_emission_records_sensor_time", "sensor_id", "data_time"))

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"))
    cn: Mapped[str] = mapped_column(String(4))  # 2011 real-time, 2051 minute, 2061 hour, 2031 day
    data_time: Mapped[datetime] = mapped_column(UTCDateTime)
    pollutant: Mapped[str] = mapped_column(String(16))
    values: Mapped[dict[str, float]] = mapped_column(JSON)  # Rtd, Avg, Min, Max, Cou, ZsAvg, ...
    flag: Mapped[str | None] = mapped_column(String(4))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
