"""Registry tables. Every row belongs to a site; a site's time zone governs weekly schedules."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Enum, ForeignKey, Index, Integer, LargeBinary, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idsvc.core.db import Base, UTCDateTime, utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings (no native PG enum types): adding a value needs no type migration.
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e], validate_strings=True)


class UnitKind(str, enum.Enum):
    flat = "flat"
    shop = "shop"
    office = "office"
    other = "other"


class DoorKind(str, enum.Enum):
    unit_door = "unit_door"
    entrance = "entrance"
    gate_lane = "gate_lane"
    other = "other"


class PersonKind(str, enum.Enum):
    tenant = "tenant"
    owner = "owner"
    resident = "resident"
    employee = "employee"
    visitor = "visitor"
    staff = "staff"


class DeviceKind(str, enum.Enum):
    lock = "lock"
    qr_reader = "qr_reader"
    face_camera = "face_camera"
    plate_camera = "plate_camera"
    thermometer = "thermometer"
    gate_terminal = "gate_terminal"
    bridge = "bridge"


class FaceMode(str, enum.Enum):
    """How a door uses faces (docs/faces.md). A QR pass always opens a door as well: face is never the only way in."""

    off = "off"
    face_and_pass = "face_and_pass"  # 1:1 against the holder of the pass shown
    face_and_code = "face_and_code"  # 1:N among the people of the unit whose short code was keyed
    face_only = "face_only"  # 1:N among everyone who may pass the door now


class Status(str, enum.Enum):
    active = "active"
    suspended = "suspended"
    revoked = "revoked"


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Building(Base):
    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


door_group_doors = Table(
    "door_group_doors",
    Base.metadata,
    Column("door_group_id", ForeignKey("door_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("door_id", ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True, index=True),
)

device_doors = Table(
    "device_doors",
    Base.metadata,
    Column("device_id", ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("door_id", ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Person(Base):
    """A person of one site. Name, phone, external reference and the optional registration fields are
    sealed together in ``sealed`` (registry/personal.py); equality lookups use blind indexes."""

    __tablename__ = "people"
    __table_args__ = (
        Index("ix_people_site_phone", "site_id", "phone_index"),
        Index("ix_people_site_external_ref", "site_id", "external_ref_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[PersonKind] = mapped_column(_enum(PersonKind))
    # AES-GCM sealed JSON of the personal fields, bound to the pseudonym; NULL once erased.
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_index: Mapped[str | None] = mapped_column(String(32))
    external_ref_index: Mapped[str | None] = mapped_column(String(32))
    # Names (never values) of the registration fields that are filled: "registration overdue" needs no key.
    registration_filled: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The only identifier that leaves the service (passes, sync feeds): random, unlinkable to the name.
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    # Stands for the person in pseudonymised audit events; deleted on erasure, which unlinks them for good.
    audit_pseudonym: Mapped[str | None] = mapped_column(String(32), unique=True)
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    # An owner who registered this tenant may see and manage them.
    created_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Retention removed the phone and registration fields (the tenancy ended long enough ago).
    contact_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Erased on request: what is left is a tombstone (status revoked) that keeps bridges refusing them.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("building_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(40))
    kind: Mapped[UnitKind] = mapped_column(_enum(UnitKind), default=UnitKind.flat)
    # "One house, one code": random, stable for the unit's life, printed as the unit's QR.
    code: Mapped[str] = mapped_column(String(16), unique=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Door(Base):
    __tablename__ = "doors"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[DoorKind] = mapped_column(_enum(DoorKind))
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    face_mode: Mapped[FaceMode] = mapped_column(_enum(FaceMode), default=FaceMode.face_and_pass, server_default=FaceMode.face_and_pass.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DoorGroup(Base):
    __tablename__ = "door_groups"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # Set for the group every unit gets: its own doors plus its building's entrances.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), unique=True)
    doors: Mapped[list[Door]] = relationship(secondary=door_group_doors, order_by=Door.id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Vehicle(Base):
    __tablename__ = "vehicles"
    __table_args__ = (UniqueConstraint("site_id", "plate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    plate: Mapped[str] = mapped_column(String(16))
    owner_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    company: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[DeviceKind] = mapped_column(_enum(DeviceKind))
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    doors: Mapped[list[Door]] = relationship(secondary=device_doors, order_by=Door.id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Grant(Base):
    """Person or vehicle may pass the doors of a door group within a window (and schedule, and use count)."""

    __tablename__ = "grants"
    __table_args__ = (
        CheckConstraint("(person_id IS NULL) <> (vehicle_id IS NULL)", name="grant_one_subject"),
        CheckConstraint("valid_until > valid_from", name="grant_window_order"),
        Index("ix_grants_person_status", "person_id", "status"),
        Index("ix_grants_vehicle_status", "vehicle_id", "status"),
        # Arrivals and departures per day (tenancy reports).
        Index("ix_grants_site_from", "site_id", "valid_from"),
        Index("ix_grants_site_ended", "site_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    door_group_id: Mapped[int] = mapped_column(ForeignKey("door_groups.id", ondelete="CASCADE"), index=True)
    # Set when a landlord authorised a tenant for their unit: the owner may manage this grant.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    # [{"days": [0..6 Monday=0], "start": "HH:MM", "end": "HH:MM"}] in the site's time zone; null = any time.
    schedule: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    # When it was revoked: a tenancy ended before valid_until ended then (the departure day).
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SitePlan(Base):
    """A site's plan for the console's map: an uploaded image (none: the console draws one) and
    where doors sit on it, as fractions (0-1) of its width and height, y downwards."""

    __tablename__ = "site_plans"
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    media_type: Mapped[str | None] = mapped_column(String(32))
    image: Mapped[bytes | None] = mapped_column(LargeBinary)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    door_positions: Mapped[dict[str, list[float]]] = mapped_column(JSON, default=dict)  # door id -> [x, y]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
