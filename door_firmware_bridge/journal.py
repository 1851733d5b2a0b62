"""The local journal: append-only SQLite of every decision and device event, with stable event ids.

WAL with ``synchronous=FULL``: an append has reached the disk when :meth:`Journal.append` returns,
so a SIGKILL (or a power cut) right after loses nothing. The bridge journals a decision *before*
it sends the unlock. Rows are never updated except for the upload marker; uploads use the event id,
which the service stores once.

Beside the events, in the same transactions, the journal keeps the unlocks that have not ended yet
(an allow or a command without its ``command_result``), so a start after a crash finds them at once
(door_firmware_bridge.recovery) instead of searching the whole journal.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from door_firmware_bridge.model import new_id, utcnow

PENDING, UPLOADED, REJECTED = 0, 1, 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    door_id INTEGER,
    person_id INTEGER,
    data TEXT NOT NULL,
    upload INTEGER NOT NULL DEFAULT 0,
    note TEXT
);
CREATE INDEX IF NOT EXISTS ix_events_pending ON events (upload, seq);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offline_uses (
    event_id TEXT PRIMARY KEY,     -- an offline allow on a grant with a use limit
    grant_id INTEGER NOT NULL,
    acked_at REAL                  -- when the service stored it (and counted the use); NULL = not yet
);
CREATE TABLE IF NOT EXISTS unfinished (
    key TEXT PRIMARY KEY,          -- the decision id, or the command id of a command without a decision (a relock)
    door_id INTEGER,
    decision_id TEXT,
    cmd_id TEXT,
    action TEXT,
    expires_at TEXT
);
"""


@dataclass(frozen=True)
class UnfinishedRow:
    door_id: int | None
    decision_id: str | None
    cmd_id: str | None
    action: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Entry:
    event_id: str
    kind: str
    at: datetime
    door_id: int | None
    person_id: int | None
    data: dict[str, Any]

    def to_upload(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "kind": self.kind, "at": self.at.isoformat(), "door_id": self.door_id, "person_id": self.person_id, "data": self.data}


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One connection guarded by a lock: appends come from the event loop and from worker threads.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, kind: str, *, door_id: int | None = None, person_id: int | None = None, data: dict[str, Any] | None = None, at: datetime | None = None) -> Entry:
        return self.append_many([Entry(new_id(), kind, at or utcnow(), door_id, person_id, data or {})])[0]

    def append_many(self, entries: list[Entry]) -> list[Entry]:
        """One transaction (one fsync) for the lot: the group commit behind the journal's throughput."""
        rows = [(e.event_id, e.kind, e.at.isoformat(), e.door_id, e.person_id, json.dumps(e.data, default=str)) for e in entries]
        with self._transaction():
            self._db.executemany("INSERT INTO events (event_id, kind, at, door_id, person_id, data) VALUES (?, ?, ?, ?, ?, ?)", rows)
            for entry in entries:
                self._track_unlock(entry)
        return entries

    def _track_unlock(self, entry: Entry) -> None:
        """Keep ``unfinished`` and ``offline_uses`` in step with the unlock events (inside the append's transaction)."""
        data = entry.data
        versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
        if entry.kind == "access_granted" and data.get("source") == "offline" and versions.get("counts_uses") and isinstance(versions.get("grant_id"), int):
            self._db.execute("INSERT OR IGNORE INTO offline_uses (event_id, grant_id) VALUES (?, ?)", (entry.event_id, versions["grant_id"]))
        if entry.kind == "access_granted" and data.get("decision_id"):
            self._db.execute("INSERT OR IGNORE INTO unfinished (key, door_id, decision_id, action) VALUES (?, ?, ?, 'pulse_unlock')",
                             (data["decision_id"], entry.door_id, data["decision_id"]))
        elif entry.kind == "command_sent":
            key = data.get("decision_id") or data["cmd_id"]
            self._db.execute(
                "INSERT INTO unfinished (key, door_id, decision_id, cmd_id, action, expires_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET cmd_id = excluded.cmd_id, action = excluded.action, expires_at = excluded.expires_at",
                (key, entry.door_id, data.get("decision_id"), data["cmd_id"], data.get("action", "pulse_unlock"), data.get("expires_at")))
        elif entry.kind == "command_result":
            self._db.execute("DELETE FROM unfinished WHERE key IN (?, ?)", (data.get("decision_id") or "", data.get("cmd_id") or ""))

    # --- uses taken offline, until the feed counts them ---------------------------------------

    def offline_uses(self) -> dict[int, int]:
        """grant id -> offline uses the held feed does not count yet."""
        with self._lock:
            return dict(self._db.execute("SELECT grant_id, COUNT(*) FROM offline_uses GROUP BY grant_id").fetchall())

    def uses_settled(self, event_ids: list[str], at: float | None) -> None:
        """The service stored these events (``at``: when; it counted their uses), or refused them (``None``: never counted)."""
        with self._transaction():
            if at is None:
                self._db.executemany("DELETE FROM offline_uses WHERE event_id = ?", [(i,) for i in event_ids])
            else:
                self._db.executemany("UPDATE offline_uses SET acked_at = ? WHERE event_id = ? AND acked_at IS NULL", [(at, i) for i in event_ids])

    def uses_in_feed(self, fetched_after: float) -> None:
        """A feed fetched after ``fetched_after`` (wall clock) counts the uses the service had stored by then."""
        with self._transaction():
            self._db.execute("DELETE FROM offline_uses WHERE acked_at IS NOT NULL AND acked_at < ?", (fetched_after,))

    def unfinished_commands(self) -> list[UnfinishedRow]:
        """Allows and commands without a ``command_result`` yet, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT door_id, decision_id, cmd_id, action, expires_at FROM unfinished ORDER BY rowid").fetchall()
        return [UnfinishedRow(r[0], r[1], r[2], r[3] or "pulse_unlock", datetime.fromisoformat(r[4]) if r[4] else None) for r in rows]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One explicit transaction: without it every statement of an executemany commits (and syncs) alone."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pending(self, limit: int) -> list[Entry]:
        with self._lock:
            rows = self._db.execute("SELECT event_id, kind, at, door_id, person_id, data FROM events WHERE upload = ? ORDER BY seq LIMIT ?", (PENDING, limit)).fetchall()
        return [Entry(r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4], json.loads(r[5])) for r in rows]

    def mark(self, event_ids: list[str], state: int, note: str | None = None) -> None:
        with self._transaction():
            self._db.executemany("UPDATE events SET upload = ?, note = ? WHERE event_id = ?", [(state, note, i) for i in event_ids])

    def prune_uploaded(self, before: datetime) -> int:
        """Forget events the service has stored (or rejected) that happened before ``before``.

        The only deletion: a gateway's disk is finite, and the service holds these now. Pending
        events are never pruned, however old.
        """
        with self._transaction():
            return self._db.execute("DELETE FROM events WHERE upload != ? AND at < ?", (PENDING, before.isoformat())).rowcount

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = dict(self._db.execute("SELECT upload, COUNT(*) FROM events GROUP BY upload").fetchall())
        return {"pending": rows.get(PENDING, 0), "uploaded": rows.get(UPLOADED, 0), "rejected": rows.get(REJECTED, 0)}

    def entries(self, kind: str | None = None) -> list[Entry]:
        """Everything (or one kind) in order: for `door-bridge status`, tests and audits on site."""
        sql, args = "SELECT event_id, kind, at, door_id, person_id, data FROM events", ()
        if kind is not None:
            sql, args = sql + " WHERE kind = ?", (kind,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [Entry(r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4], json.loads(r[5])) for r in rows]

    def get_cursor(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_cursor(self, name: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))


class JournalWriter:
    """Group commit for the event loop: every entry waiting when the disk is free goes in one fsync.

    :meth:`write` returns once the entry is durable (the bridge awaits this before it unlocks);
    callers that only need ordering can :meth:`submit` and not wait.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._waiting: list[tuple[Entry, asyncio.Future[Entry]]] = []
        self._wakeup = asyncio.Event()

    def submit(self, entry: Entry) -> asyncio.Future[Entry]:
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, future))
        self._wakeup.set()
        return future

    async def write(self, entry: Entry) -> Entry:
        return await self.submit(entry)

    async def run(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                await self._flush()
        finally:
            await self._flush()  # on shutdown, what was submitted still reaches the disk

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await asyncio.shield(asyncio.to_thread(self.journal.append_many, [e for e, _ in batch]))
            except Exception as exc:  # the disk refused: every waiter learns it, nothing pretends to be saved
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for entry, future in batch:
                if not future.done():
                    future.set_result(entry)
