"""Tables of the pass domain: issuer keys, issued passes, and the versions verifiers poll."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.core.db import Base, UTCDateTime, utcnow
from idsvc.passes.claims import PassType
from idsvc.registry.models import Status


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e], validate_strings=True)


class KeyPurpose(str, enum.Enum):
    root = "root"  # signs the trust list only
    issuer = "issuer"  # signs passes and status lists


class KeyStatus(str, enum.Enum):
    active = "active"  # signs new passes (one issuer key at a time)
    retired = "retired"  # verifies the passes it signed until verify_until
    withdrawn = "withdrawn"  # trusted no more: every pass it signed is refused


class IssuerKey(Base):
    __tablename__ = "pass_issuer_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(16), unique=True)  # hex of the 8-byte COSE kid
    purpose: Mapped[KeyPurpose] = mapped_column(_enum(KeyPurpose))
    alg: Mapped[int] = mapped_column(Integer)
    public_der: Mapped[bytes] = mapped_column(LargeBinary)
    # PKCS#8 PEM sealed with the master key (AES-GCM, bound to the kid).
    sealed_private: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[KeyStatus] = mapped_column(_enum(KeyStatus), default=KeyStatus.active)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verify_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Pass(Base):
    __tablename__ = "passes"
    __table_args__ = (Index("ix_passes_person_status", "person_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pass_id: Mapped[str] = mapped_column(String(32), unique=True)  # hex of the cti claim
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    pass_type: Mapped[PassType] = mapped_column(_enum(PassType))
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    # Random, so a status list leaks neither issue order nor how many passes a site has.
    status_index: Mapped[int] = mapped_column(Integer, unique=True)
    kid: Mapped[str] = mapped_column(String(16), index=True)
    # {"site_id", "unit_ids", "door_group_ids"} as signed into the pass, so its QR can be shown again.
    scope: Mapped[dict[str, Any]] = mapped_column(JSON)
    holder_key: Mapped[bytes | None] = mapped_column(LargeBinary)  # CBOR COSE_Key of the phone, if any
    renewed_from_id: Mapped[int | None] = mapped_column(ForeignKey("passes.id", ondelete="SET NULL"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(80))


class PassVersions(Base):
    """One row: bumped on every key or status change, so verifiers reload only what changed."""

    __tablename__ = "pass_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    trust_version: Mapped[int] = mapped_column(Integer, default=0)
    status_version: Mapped[int] = mapped_column(Integer, default=0)
