"""The byte search of the SQLite files must leave the test process's database locks alone.

It once read the files in process: that dropped the process's SQLite locks, the next service
process to stop deleted the write-ahead log the tests still wrote into, and every service started
after it answered 401 for the keys of its test (tests/alarms/test_sensors_e2e.py after tests/privacy).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from idsvc.core.db import Database
from tests.databases import lost_sqlite_lock
from tests.privacy.evidence import found_in_sqlite_files

# Another process on the same database: opens it, counts the rows, closes its only connection.
_COUNT = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('SELECT count(*) FROM notes').fetchone()[0]); c.close()"


def _count_elsewhere(path: Path) -> int:
    return int(subprocess.run([sys.executable, "-c", _COUNT, str(path)], capture_output=True, text=True, check=True).stdout)


def test_searching_the_files_keeps_this_process_writes_visible_to_others(tmp_path: Path) -> None:
    path = tmp_path / "evidence.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TABLE notes (body TEXT)"))
            connection.execute(text("INSERT INTO notes VALUES ('王小明 +86 138 0013 8000')"))
        assert found_in_sqlite_files(db, "王小明", "nobody") == ["evidence.db: '王小明'"]
        assert lost_sqlite_lock(db) is None
        assert _count_elsewhere(path) == 1  # the other process closes its last connection here
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO notes VALUES ('later')"))
        assert _count_elsewhere(path) == 2  # lost into a deleted write-ahead log when the locks were dropped
    finally:
        db.dispose()
