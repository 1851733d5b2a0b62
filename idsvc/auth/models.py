"""API keys. A key *is* a role binding: the role it grants and the scope (site, person, device)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.core.db import Base, UTCDateTime, utcnow


class Role(str, enum.Enum):
    district_admin = "district_admin"
    site_admin = "site_admin"
    owner = "owner"
    tenant = "tenant"
    device = "device"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Keys are 256-bit random, so a plain SHA-256 is a safe verifier; the prefix lets people tell keys apart.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]))
    label: Mapped[str] = mapped_column(String(200), default="")
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
