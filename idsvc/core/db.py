"""Database engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from idsvc.core.sealing import Sealer, SealingError


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps go in and come out timezone-aware UTC on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def session_sealer(session: Session) -> Sealer:
    sealer = session.info.get("sealer")
    if sealer is None:
        raise SealingError("this database handle was opened without the master key; personal fields cannot be read or written")
    return sealer  # type: ignore[no-any-return]


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # As many pooled connections as request threads (Starlette's threadpool has 40): a connection
        # opened per request under load costs more than the query it serves.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20, max_overflow=20)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Overwrite deleted content with zeros: erased personal data must not linger in free pages.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    """Owns the engine and hands out transactional sessions.

    Each session carries the sealer (``session_sealer``): personal fields are sealed at rest, so a
    service that reads or writes them needs the key as surely as it needs the connection.
    """

    def __init__(self, url: str, sealer: Sealer | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info={"sealer": sealer})

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def new_session(self) -> Session:
        """A bare session for read-only callers that manage its life themselves."""
        return self._sessions()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def compact_wal(self) -> None:
        """SQLite: copy the write-ahead log into the database file and empty it, so content deleted
        or overwritten (erased personal data) survives in neither. Best effort: readers may keep part
        of the log alive until they finish. PostgreSQL: nothing to do here (VACUUM reclaims rows)."""
        if self.is_sqlite:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def dispose(self) -> None:
        self.engine.dispose()
