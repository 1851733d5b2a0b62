from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.core.db import Base, UTCDateTime, utcnow


class DeviceEvent(Base):
    """One event a device reported, keyed by the id the device gave it, so a re-upload is a no-op.

    No foreign keys, like the audit trail: the record must outlive the door or device it names.
    """

    __tablename__ = "device_events"
    __table_args__ = (Index("ix_device_events_door_at", "door_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[int] = mapped_column(Integer, index=True)
    site_id: Mapped[int | None] = mapped_column(Integer)
    door_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    audit_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
