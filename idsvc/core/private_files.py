"""The service's own files are private: directories 0700, files 0600.

The data directory holds the SQLite database (every person's record), its write-ahead log, the
decision journals and the development master key; another local account must not read them.
SQLite gives its -wal and -shm files the mode of the database file, so creating that file 0600
before SQLite opens it covers them. Files left group- or world-readable by an older release are
tightened when the service next opens them.
"""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:
        path.chmod(current & ~0o077 & mode)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner may enter (created with its parents if missing)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner may read (created empty if missing), in a private directory.

    An existing file is never opened, only chmod-ed: closing any descriptor of a SQLite database
    drops the POSIX locks this process holds on it through SQLite (disk I/O errors, corruption)."""
    private_dir(path.parent)
    if not path.exists():
        with suppress(FileExistsError):  # another thread created it meanwhile
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    _tighten(path, PRIVATE_FILE)
    return path


def open_private(path: Path) -> BinaryIO:
    """``open(path, "ab", buffering=0)`` for a file this process creates: 0600 from the first byte."""
    return open(path, "ab", buffering=0, opener=lambda name, flags: os.open(name, flags, PRIVATE_FILE))


def sqlite_files_private(database: str) -> None:
    """The SQLite database file 0600 before it is opened, and its directory 0700; an existing WAL,
    shared-memory or rollback journal is tightened too."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion, PRIVATE_FILE)
