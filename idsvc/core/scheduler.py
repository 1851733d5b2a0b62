"""Periodic jobs inside the service, each run by one node at a time.

Every node of ``idsvc serve`` runs a scheduler thread that looks for due jobs every few seconds.
Two things make a job run once per period across nodes:

- a lock held while it runs: on PostgreSQL a session-level advisory lock on a connection of its own
  (the server releases it if the node dies, so a crash never leaves a job locked); on SQLite (one
  machine) an exclusive lock on a file per job, which also keeps an operator's ``idsvc jobs run``
  from overlapping the service's run (the kernel releases it if the process dies);
- a claim in the ``scheduled_jobs`` row, taken under that lock: ``next_run_at`` is moved forward with
  a conditional update that succeeds only while the job is still due, so a node that gets the lock
  just after another finished does not run the job again.

The row keeps the visible state (last start and end, node, result, next run) for ``idsvc jobs`` and
``GET /v1/jobs``. A job that fails is retried after ``retry`` (or its period, if shorter).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.core.db import Base, Database, UTCDateTime, utcnow
from idsvc.core.private_files import private_dir

log = logging.getLogger(__name__)


class ScheduledJob(Base):
    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_node: Mapped[str | None] = mapped_column(String(120))
    last_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    runs: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[bool], dict[str, Any]]  # dry_run -> a JSON summary of what it did (or would do)
    description: str


class JobNotFound(LookupError):
    pass


def this_node() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _advisory_key(name: str) -> int:
    # pg_advisory_lock takes a signed 64-bit key; derive a stable one from the job name.
    return int.from_bytes(hashlib.sha256(b"idsvc-job:" + name.encode()).digest()[:8], "big", signed=True)


class Scheduler:
    def __init__(
        self, db: Database, jobs: list[Job], lock_dir: Path, *, tick: float = 30.0, node: str | None = None, retry: timedelta = timedelta(hours=1)
    ) -> None:
        self.db = db
        self.jobs = {job.name: job for job in jobs}
        self.lock_dir = lock_dir
        self.tick_seconds = tick
        self.node = node or this_node()
        self.retry = retry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop looking for jobs; a job that is running finishes first (up to ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.run_due()
            except Exception:
                log.exception("the scheduler could not check its jobs; trying again in %.0f s", self.tick_seconds)

    def run_due(self) -> list[str]:
        """Run every job that is due (or whose last run died) and is not running elsewhere; returns the
        names this node ran."""
        ran = []
        for name in self.jobs:
            if self._stop.is_set():
                break
            state = self._state(name, utcnow())
            unfinished = state.last_started_at is not None and (state.last_finished_at is None or state.last_finished_at < state.last_started_at)
            if (state.next_run_at <= utcnow() or unfinished) and self._run(name, dry_run=False, claim_due=True) is not None:
                ran.append(name)
        return ran

    # --- one job -------------------------------------------------------------------------------

    def run_now(self, name: str, *, dry_run: bool = False) -> dict[str, Any] | None:
        """Run a job at once (an operator's request), under the same lock; None if it is running elsewhere.
        A dry run reports what the job would do and leaves its state alone."""
        if name not in self.jobs:
            raise JobNotFound(name)
        self._state(name, utcnow())
        return self._run(name, dry_run=dry_run, claim_due=False)

    def _run(self, name: str, *, dry_run: bool, claim_due: bool) -> dict[str, Any] | None:
        job = self.jobs[name]
        with self._lock(name) as held:
            if not held:
                return None
            started = utcnow()
            if not dry_run and not self._claim(job, started, only_if_due=claim_due):
                return None  # another node ran it between our look and our lock
            try:
                result = job.run(dry_run)
            except Exception as exc:
                log.exception("job %s failed", name)
                result, ok = {"error": f"{type(exc).__name__}: {exc}"}, False
            else:
                ok = True
            if not dry_run:
                self._finish(job, started, ok, result)
            return {"job": name, "ok": ok, "dry_run": dry_run, "result": result}

    def _state(self, name: str, now: datetime) -> ScheduledJob:
        """The job's row, created due at once the first time any node sees the job."""
        with self.db.session() as s:
            row = s.get(ScheduledJob, name)
            if row is not None:
                return row
        try:
            with self.db.session() as s:
                s.execute(insert(ScheduledJob).values(name=name, next_run_at=now, runs=0))
        except IntegrityError:
            pass  # another node created it first
        with self.db.session() as s:
            return s.get(ScheduledJob, name)  # type: ignore[return-value]

    def _claim(self, job: Job, now: datetime, *, only_if_due: bool) -> bool:
        """Under the job's lock: move its next run forward, if it is still due. A run that started
        and never finished counts as due: its node died (it would hold the lock otherwise)."""
        stmt = update(ScheduledJob).where(ScheduledJob.name == job.name)
        if only_if_due:
            died = ScheduledJob.last_started_at.is_not(None) & (
                ScheduledJob.last_finished_at.is_(None) | (ScheduledJob.last_finished_at < ScheduledJob.last_started_at)
            )
            stmt = stmt.where((ScheduledJob.next_run_at <= now) | died)
        with self.db.session() as s:
            claimed = s.execute(stmt.values(next_run_at=now + job.every, last_started_at=now, last_node=self.node)).rowcount
        return bool(claimed)

    def _finish(self, job: Job, started: datetime, ok: bool, result: dict[str, Any]) -> None:
        values: dict[str, Any] = {"last_finished_at": utcnow(), "last_ok": ok, "last_result": result, "runs": ScheduledJob.runs + 1}
        if not ok:
            values["next_run_at"] = started + min(job.every, self.retry)
        with self.db.session() as s:
            s.execute(update(ScheduledJob).where(ScheduledJob.name == job.name).values(**values))

    @contextmanager
    def _lock(self, name: str) -> Iterator[bool]:
        if self.db.is_sqlite:
            private_dir(self.lock_dir)
            with open(self.lock_dir / f"job-{name}.lock", "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        key = _advisory_key(name)
        with self.db.engine.connect() as connection:
            held = bool(connection.scalar(select(func.pg_try_advisory_lock(key))))
            connection.commit()
            try:
                yield held
            finally:
                if held:
                    connection.scalar(select(func.pg_advisory_unlock(key)))
                    connection.commit()

    # --- what operators see --------------------------------------------------------------------

    def states(self) -> list[dict[str, Any]]:
        with self.db.session() as s:
            rows = {row.name: row for row in s.scalars(select(ScheduledJob))}
        out = []
        for name, job in self.jobs.items():
            row = rows.get(name)
            out.append({
                "job": name,
                "description": job.description,
                "every_seconds": int(job.every.total_seconds()),
                "next_run_at": row.next_run_at if row else None,
                "last_started_at": row.last_started_at if row else None,
                "last_finished_at": row.last_finished_at if row else None,
                "last_node": row.last_node if row else None,
                "last_ok": row.last_ok if row else None,
                "last_result": row.last_result if row else None,
                "runs": row.runs if row else 0,
            })
        return out
