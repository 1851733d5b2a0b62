"""A fresh, empty database of the backend under test, for tests that run migrations themselves."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text


@contextmanager
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """A URL to a new empty database: a SQLite file, or on PostgreSQL a database dropped afterwards."""
    base = os.environ.get("IDSVC_TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / f'fresh-{secrets.token_hex(4)}.db'}"
        return
    name = f"idsvc_fresh_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
