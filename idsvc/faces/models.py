"""Face tables: consent records, encrypted templates, and a per-site gallery version.

A template row holds an AES-GCM sealed embedding bound (AAD) to its site, person and pack, so a blob
copied to another row or site does not open. Photos are never stored.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.core.db import Base, UTCDateTime, utcnow


class ConsentPurpose(str, enum.Enum):
    """What a separate consent (PIPL art. 29) is given for; each purpose needs its own record."""

    face_access = "face_access"  # a face template, matched at this site's doors by the service
    face_offline = "face_offline"  # that template copied, encrypted, to the site's bridges for offline decisions


class FaceConsent(Base):
    """Who agreed to what, when, how, having read which text in which language; withdrawn_at set = no longer valid."""

    __tablename__ = "face_consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[ConsentPurpose] = mapped_column(Enum(ConsentPurpose, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e], validate_strings=True))
    text_version: Mapped[str] = mapped_column(String(40))  # the version of the consent text the person was shown
    language: Mapped[str] = mapped_column(String(16))  # its language, a BCP 47 tag such as zh-CN
    # The free-text purpose of a consent recorded before purposes were codes (migration 0008).
    legacy_purpose: Mapped[str | None] = mapped_column(String(200))
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


class FaceFiling(Base):
    """An operator's confirmation that the deployment's face-recognition use was filed with the
    provincial cyberspace administration (2025 measures, art. 15: at 100,000 people). Enrolment past
    the configured ceiling needs one."""

    __tablename__ = "face_filings"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(200))  # the filing's number or receipt, as the authority gave it
    people_enrolled: Mapped[int] = mapped_column(Integer)  # how many people had a template when it was confirmed
    confirmed_by: Mapped[str] = mapped_column(String(80))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
