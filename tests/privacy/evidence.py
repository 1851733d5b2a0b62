"""Where a piece of personal data can still be found: every column of every table, and on SQLite
every byte of the database files."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text

from idsvc.context import AppContext
from idsvc.db.schema import metadata


def found_in_tables(ctx: AppContext, *needles: str) -> list[str]:
    """'table.column' for every stored value (bytes, text, JSON) that contains one of the needles."""
    hits = []
    with ctx.db.session() as s:
        for table in metadata.sorted_tables:
            for row in s.execute(select(table)):
                for column, value in row._mapping.items():
                    raw = value if isinstance(value, bytes) else repr(value).encode("utf-8", "backslashreplace")
                    as_text = value.decode("utf-8", "ignore") if isinstance(value, bytes) else str(value)
                    if any(n in as_text or n.encode() in raw for n in needles):
                        hits.append(f"{table.name}.{column}")
    return sorted(set(hits))


def found_in_sqlite_files(ctx: AppContext, *needles: str) -> list[str]:
    """The database files that hold one of the needles' bytes, after a checkpoint (SQLite only)."""
    with ctx.db.engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    path = Path(ctx.db.engine.url.database or "")
    hits = []
    for file in (path, path.with_name(path.name + "-wal")):
        if file.exists():
            data = file.read_bytes()
            hits += [f"{file.name}: {n!r}" for n in needles if n.encode() in data or n.encode("utf-16-le") in data]
    return hits
