"""Tables of the sync feed: the feed version and the log of what changed at which version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.core.db import Base, UTCDateTime, utcnow


class SyncVersion(Base):
    """One row. ``version`` rises by one per committed transaction that changed feed data; updating it
    last in the transaction (row lock held until commit) makes versions commit in order, so a reader
    that saw version V can never later find a change at a version below V."""

    __tablename__ = "sync_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    # Changes at or below this version were pruned: a bridge that far behind gets a full snapshot.
    pruned_through: Mapped[int] = mapped_column(BigInteger, default=0)


class SyncChange(Base):
    """"Entity (section, key) of site S changed at version V": the delta re-reads its current state."""

    __tablename__ = "sync_changes"
    __table_args__ = (Index("ix_sync_changes_version_site", "version", "site_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    site_id: Mapped[int | None] = mapped_column(Integer)  # None: every site (issuer keys)
    section: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncSiteKey(Base):
    """The key that encrypts a site's face templates inside its feed, handed to that site's bridges
    when they are provisioned (``idsvc sync face-key``); stored sealed with the master key."""

    __tablename__ = "sync_site_keys"

    site_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
