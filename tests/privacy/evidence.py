"""Where a piece of personal data can still be found: every column of every table, and on SQLite
every byte of the database files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select, text

from idsvc.context import AppContext
from idsvc.core.db import Database
from idsvc.db.schema import metadata

# Prints the bytes of the file named by its argument.
_CAT = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"


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


def found_in_sqlite_files(db: Database, *needles: str) -> list[str]:
    """The database files that hold one of the needles' bytes, after a checkpoint (SQLite only).

    A child process reads the files: closing any descriptor of the database file in this process
    would drop every POSIX lock this process's SQLite connections hold on it
    (https://www.sqlite.org/howtocorrupt.html, 2.2). The next process to close its last connection
    would then believe itself the last user, checkpoint and delete the write-ahead log this process
    still writes into, and every later write of the test run would be invisible to other processes
    (a service started by a later test answers 401 for keys made after that)."""
    with db.engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    path = Path(db.engine.url.database or "")
    hits = []
    for file in (path, path.with_name(path.name + "-wal")):
        if file.exists():
            data = subprocess.run([sys.executable, "-c", _CAT, str(file)], capture_output=True, check=True).stdout
            hits += [f"{file.name}: {n!r}" for n in needles if n.encode() in data or n.encode("utf-16-le") in data]
    return hits
