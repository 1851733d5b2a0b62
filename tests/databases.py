"""A throw-away database for a test run or a benchmark: a new PostgreSQL database, dropped after, or a
SQLite file, migrated to the current schema."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from idsvc.core.db import Database
from idsvc.db.migrate import upgrade


@contextmanager
def scratch_database(base: str | None, workdir: Path, prefix: str = "idsvc_test") -> Iterator[str]:
    """On PostgreSQL (``base`` is its URL) a database of our own; without ``base`` a SQLite file in ``workdir``."""
    if not base:
        url = f"sqlite:///{workdir / 'idsvc.db'}"
        upgrade(url)
        yield url
        return
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def lost_sqlite_lock(db: Database) -> str | None:
    """Why this process's SQLite connections to ``db`` lost their file lock, or None (also off Linux).

    In WAL mode every open connection holds a shared POSIX lock on the database file; closing any
    other descriptor of that file in this process drops them all (https://www.sqlite.org/howtocorrupt.html,
    2.2). Another process closing its last connection then deletes the write-ahead log this process
    still writes into, and this process's later writes are lost to everyone else."""
    locks = Path("/proc/locks")
    if not db.is_sqlite or not locks.exists() or db.engine.pool.checkedin() == 0:  # type: ignore[attr-defined]
        return None
    path = Path(db.engine.url.database or "")
    if not path.exists():
        return None
    inode, pid = path.stat().st_ino, str(os.getpid())
    for line in locks.read_text().splitlines():
        fields = line.split()
        if "->" not in fields and fields[4] == pid and int(fields[5].rsplit(":", 1)[1]) == inode:
            return None
    return (
        f"this process holds idle SQLite connections to {path} but no lock on it: something here opened and closed that file "
        "(read it from a child process instead); services started after this would not see this process's writes"
    )
