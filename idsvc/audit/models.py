from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.core.db import Base, UTCDateTime


class AuditEvent(Base):
    """One event. ``hash`` = SHA-256 over ``prev_hash`` and the canonical form of its public fields and
    of ``personal_digest``, a salted commitment to its personal fields (audit/chain.py).

    No foreign keys on purpose: the trail must outlive the rows it talks about.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_site_at", "site_id", "at"),
        Index("ix_audit_door_at", "door_id", "at"),
        Index("ix_audit_unit_at", "unit_id", "at"),
        Index("ix_audit_person_at", "person_id", "at"),
        Index("ix_audit_kind_at", "kind", "at"),
        Index("ix_audit_actor_at", "actor", "at"),
        Index("ix_audit_subject_at", "subject", "at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(80))
    site_id: Mapped[int | None] = mapped_column(Integer)
    unit_id: Mapped[int | None] = mapped_column(Integer)
    door_id: Mapped[int | None] = mapped_column(Integer)
    person_id: Mapped[int | None] = mapped_column(Integer)
    entity_type: Mapped[str | None] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Set while the event holds personal fields; deleted when they are pseudonymised.
    personal_salt: Mapped[bytes | None] = mapped_column(LargeBinary)
    personal_digest: Mapped[str | None] = mapped_column(String(64))
    # After pseudonymisation: the person's audit pseudonym in place of person_id, and the seq of the
    # event that recorded the pseudonymisation (retention run or erasure).
    subject: Mapped[str | None] = mapped_column(String(40))
    pseudonymised_in: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Single row holding the chain's tip; updating it serialises appends across nodes."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
