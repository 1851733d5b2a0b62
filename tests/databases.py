"""A throw-away database for a test run or a benchmark: a new PostgreSQL database, dropped after, or a
SQLite file, migrated to the current schema."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

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
