"""Database engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from idsvc.core.deadlines import watchdog
from idsvc.core.private_files import sqlite_files_private
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


def make_engine(url: str, timeout_s: float = 0) -> Engine:
    """``timeout_s`` (PostgreSQL; 0 = none) bounds every wait on the database: connecting, a pool
    checkout, each statement (the server's ``statement_timeout`` and a client-side deadline)."""
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
    if not timeout_s:
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_timeout=timeout_s,
        connect_args={"connect_timeout": max(2, round(timeout_s)), "options": f"-c statement_timeout={int(timeout_s * 1000)}"},
    )
    # The server's own timeout first (a clean error); ours one second later, for a server that does not answer at all.
    _bound_every_wait(engine, timeout_s + 1, ping_s=min(timeout_s, 1.0))
    return engine


def _bound_every_wait(engine: Engine, seconds: float, ping_s: float) -> None:
    """Arm a :mod:`idsvc.core.deadlines` deadline around every round trip on a pooled connection:
    the checkout ping (``ping_s``: a healthy server answers SELECT 1 in a millisecond, and a failed ping
    still costs a new connection's ``connect_timeout``), each statement, commit and rollback
    (psycopg's socket is ``pgconn.socket``)."""
    dog = watchdog()

    def arm(info: dict[str, Any], dbapi_connection: Any, what: str, within: float = seconds) -> None:
        disarm(info)
        info["deadline"] = dog.arm(dbapi_connection.pgconn.socket, within, what)

    def disarm(info: dict[str, Any]) -> None:
        ticket = info.pop("deadline", None)
        if ticket is not None:
            dog.disarm(ticket)

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # Our pre-ping (instead of pool_pre_ping, which has no deadline): a dead or silent connection
        # is replaced by a new one, and a database that does not answer fails within ``seconds``.
        arm(record.info, dbapi_connection, "PostgreSQL (checkout ping)", ping_s)
        try:
            engine.dialect.do_ping(dbapi_connection)  # SQLAlchemy's own ping (in autocommit: no transaction left open)
        except (engine.dialect.loaded_dbapi.Error, OSError) as exc:  # any failure of the ping means: not this connection
            raise DisconnectionError(f"the pooled connection did not answer: {exc}") from exc
        finally:
            disarm(record.info)

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        disarm(record.info)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        arm(conn.info, conn.connection.dbapi_connection, "PostgreSQL (statement)")

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, *_args: Any) -> None:
        disarm(conn.info)

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:  # before the COMMIT round trip; disarmed by the next statement or checkin
        arm(conn.info, conn.connection.dbapi_connection, "PostgreSQL (commit)")

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Any) -> None:
        if conn.connection.dbapi_connection is not None and not conn.connection.dbapi_connection.closed:
            arm(conn.info, conn.connection.dbapi_connection, "PostgreSQL (rollback)")

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        if context.connection is not None:
            disarm(context.connection.info)


class Database:
    """Owns the engine and hands out transactional sessions.

    Each session carries the sealer (``session_sealer``): personal fields are sealed at rest, so a
    service that reads or writes them needs the key as surely as it needs the connection.
    """

    def __init__(self, url: str, sealer: Sealer | None = None, timeout_s: float = 0) -> None:
        self.url = url
        if url.startswith("sqlite"):
            sqlite_files_private(make_url(url).database or "")
        self.engine = make_engine(url, timeout_s)
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
