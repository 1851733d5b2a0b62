"""Face tables: consent records, encrypted templates, and a per-site gallery version.

A template row holds an AES-GCM sealed embedding bound (AAD) to its site, person and pack, so a blob
copied to another row or site does not open. Photos are never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.core.db import Base, UTCDateTime, utcnow


class FaceConsent(Base):
    """Who agreed, when, for which site and purpose; withdrawn_at set = no longer valid."""

    __tablename__ = "face_consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(100))  # how it was given: "signed form", "in app", ...
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by: Mapped[str | None] = mapped_column(String(80))


class FaceTemplate(Base):
    __tablename__ = "face_templates"
    __table_args__ = (UniqueConstraint("person_id", "pack"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("face_consents.id", ondelete="CASCADE"), index=True)
    # Embeddings of different packs are not comparable: the gallery only loads the configured pack's.
    pack: Mapped[str] = mapped_column(String(64))
    dim: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    images_used: Mapped[int] = mapped_column(Integer)
    quality: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FaceGalleryVersion(Base):
    """Changes with every template write of a site (same transaction): each node reloads its gallery
    when the token it holds differs. A random token, not a counter, so a reset database never
    matches a stale in-memory gallery."""

    __tablename__ = "face_gallery_versions"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
