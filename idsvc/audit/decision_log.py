"""Decision events, written to the audit trail in batches without losing any.

Measured here, one audit append with its commit costs 2-8 ms (SQLite / PostgreSQL with fsync) while
the rest of a QR decision costs well under a millisecond, so a synchronous write per decision would
set the door's speed. Instead each decision is

1. appended as one JSON line to this process's current journal segment (a write to the OS, no fsync: it
   survives a crash of the process, not of the machine) before the door gets its answer, then
2. written to the audit trail by a background thread, many per transaction (every ``interval``
   seconds or ``batch`` events), after which their journal segment is deleted. A quarter of a second keeps
   the console's view live while each transaction's fixed cost (chain head, commit) is shared by
   many decisions; with 20 ms batches the writer's own work slowed the requests it served. Each
   batch starts a new segment and its old one is deleted once written, so deciding threads never
   wait while a journal is rewritten.

At start, journals left by processes that died (their file lock is free) are replayed; events that
reached the trail before the crash are recognised by their decision id and not written twice.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.audit.models import AuditEvent
from idsvc.core import metrics
from idsvc.core.db import Database
from idsvc.core.private_files import open_private, private_dir

log = logging.getLogger(__name__)

# Under IDSVC_DATA_DIR: each process's journal segments.
JOURNAL_DIR = "decision-journal"
_FIELDS = ("kind", "actor", "site_id", "unit_id", "door_id", "person_id", "entity_type", "entity_id", "data")


def _to_line(event: audit.NewEvent) -> bytes:
    record: dict[str, Any] = {name: getattr(event, name) for name in _FIELDS}
    record["at"] = event.at.isoformat() if event.at else None
    return json.dumps(record, separators=(",", ":"), default=str).encode() + b"\n"


def _from_line(line: bytes) -> audit.NewEvent:
    record = json.loads(line)
    at = record.pop("at")
    return audit.NewEvent(**record, at=datetime.fromisoformat(at) if at else None)


class DecisionLog:
    def __init__(self, db: Database, journal_dir: Path, *, interval: float = 0.25, batch: int = 1000) -> None:
        self.db = db
        self.interval = interval
        self.batch = batch
        private_dir(journal_dir)
        self._dir = journal_dir
        self._name = f"decisions-{os.getpid()}-{id(self):x}"
        self._segments = 0
        self._journal = self._open_segment()
        # Segments whose events are queued again after a failed write: deleted once they are written.
        self._unwritten: list[BinaryIO] = []
        self._pending: list[audit.NewEvent] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # Held while a batch is taken and written (taken before _lock): flush waits for the writer's batch.
        self._writing = threading.Lock()
        self._closed = False
        self.replay_orphans()
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def _open_segment(self) -> BinaryIO:
        """A new journal file, locked while this process lives (other processes replay unlocked ones)."""
        self._segments += 1
        handle = open_private(self._dir / f"{self._name}-{self._segments}.journal")  # closed when written
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return handle  # type: ignore[return-value]

    def submit(self, event: audit.NewEvent) -> None:
        """Record a decision durably (journal) and queue it for the audit trail."""
        line = _to_line(event)
        with self._lock:
            if self._closed:
                raise RuntimeError("decision log is closed")
            self._journal.write(line)
            self._pending.append(event)
            if len(self._pending) >= self.batch:
                self._wake.notify()

    def _take(self) -> tuple[list[audit.NewEvent], BinaryIO]:
        """Under the lock: the queued events and the segment holding them; new decisions go to a fresh one.

        Swapping segments keeps the lock short: submitters never wait for a journal rewrite."""
        events, self._pending = self._pending, []
        segment, self._journal = self._journal, self._open_segment()
        return events, segment

    def _write(self, events: list[audit.NewEvent], segment: BinaryIO) -> None:
        try:
            if events:
                with self.db.session() as session:
                    audit.append(session, *events)
        except Exception:
            with self._lock:
                self._pending[:0] = events  # keep order; their segment stays on disk until they are written
                self._unwritten.append(segment)
            raise
        with self._lock:
            done, self._unwritten = [*self._unwritten, segment], []
        for handle in done:
            Path(handle.name).unlink(missing_ok=True)
            handle.close()

    def flush(self) -> None:
        """Write everything queued so far, and wait for a batch the writer is writing (an erasure,
        shutdown, tests rely on it); on failure the events stay queued."""
        with self._writing:
            with self._lock:
                events, segment = self._take()
            self._write(events, segment)

    def close(self) -> None:
        """Stop the writer and flush; if the trail cannot be reached, the journals stay for the next start."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception:
            log.exception("could not write %d decisions at shutdown; they stay in %s for the next start", len(self._pending), self._dir)
        finally:
            with self._lock:
                left = [self._journal, *self._unwritten]
            for handle in left:  # closing releases the lock: the next process replays what is left
                handle.close()
                path = Path(handle.name)
                if path.exists() and path.stat().st_size == 0:
                    path.unlink()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._closed and len(self._pending) < self.batch:
                    self._wake.wait(self.interval)
                if self._closed:
                    return
                if not self._pending:
                    continue
            events: list[audit.NewEvent] = []
            try:
                with self._writing:
                    with self._lock:
                        events, segment = self._take()
                    self._write(events, segment)
            except Exception:
                log.exception("writing %d decisions to the audit trail failed; will retry", len(events))
                with self._lock:
                    self._wake.wait(1.0)

    def replay_orphans(self) -> int:
        """Write the journals of dead processes to the trail, skipping events already there."""
        return replay_journals(self.db, self._dir, own_prefix=self._name + "-")


def replay_journals(db: Database, journal_dir: Path, *, own_prefix: str | None = None, dry_run: bool = False) -> int:
    """Write the journal segments no live process holds (their process died) to the trail, skipping
    events already there, and delete them. Run at start and by the journal compaction job, so a
    crashed worker's decisions reach the trail without waiting for a restart. Returns the events
    written (with dry_run: that would be)."""
    replayed = 0
    for path in sorted(journal_dir.glob("decisions-*.journal")) if journal_dir.is_dir() else []:
        if own_prefix is not None and path.name.startswith(own_prefix):
            continue  # our own segments
        try:
            handle = open(path, "rb+")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive
            events = [_from_line(line) for line in handle.read().splitlines() if line.strip()]
            fresh = _not_yet_written(db, events)
            replayed += len(fresh)
            if dry_run:
                continue
            if fresh:
                with db.session() as session:
                    audit.append(session, *fresh)
            path.unlink()
    if replayed and not dry_run:
        log.warning("replayed %d decisions from the journals of stopped processes", replayed)
    return replayed


def _not_yet_written(db: Database, events: Iterable[audit.NewEvent]) -> list[audit.NewEvent]:
    events = list(events)
    ids = [e.data.get("decision_id") for e in events]
    if not events:
        return []
    earliest = min(e.at for e in events if e.at is not None)
    with db.session() as session:
        stored = set(
            session.scalars(
                select(AuditEvent.data["decision_id"].as_string()).where(AuditEvent.kind == "decision", AuditEvent.at >= earliest)
            )
        )
    return [e for e, decision_id in zip(events, ids, strict=True) if decision_id not in stored]


def _count(event: audit.NewEvent) -> None:
    data = event.data or {}
    metrics.count_decision(str(data.get("method", "unknown")), bool(data.get("allow")), data.get("reasons") or [])


def record(db: Database, log: DecisionLog | None, event: audit.NewEvent) -> None:
    """Audit one door decision: through the batched log when the app runs one, else in its own
    transaction (CLI tools, an app used without its lifespan). Counted for /metrics here, where
    every method's decisions (qr, face, face_1to1, plate) pass."""
    _count(event)
    if log is not None:
        log.submit(event)  # journalled now, in the trail within a quarter of a second
        return
    with db.session() as session:
        audit.append(session, event)


def record_in(session: Session, event: audit.NewEvent) -> None:
    """Audit one door decision in the caller's transaction, with the change it goes with (a counted
    grant use): both commit, or neither."""
    _count(event)
    audit.append(session, event)
