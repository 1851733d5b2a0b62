"""The instant deny set: revoked or suspended pass ids, person pseudonyms and withdrawn issuer kids.

Three copies, one meaning. The database is the truth. Redis holds the shared copy (one hash, field
``pass:<hex>`` / ``sub:<hex>`` / ``kid:<hex>``, value the status) that a node loads when it starts or
after it lost the notice channel. Every node holds an in-process dict, because a Redis round trip
costs more than the whole signature check (design/performance.md), kept fresh by the notices that
sync/changes.py publishes after each commit. Only random identifiers are keys, never row ids, so an
entry can never land on another person after a database is reset or restored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.core.bus import Bus, Notice
from idsvc.core.db import Database, utcnow
from idsvc.passes.models import IssuerKey, KeyStatus, Pass
from idsvc.registry.models import Person, Status
from idsvc.sync.changes import DenyEntry, kid_key, pass_key, sub_key
from idsvc.sync.models import SyncVersion

log = logging.getLogger(__name__)
_REASONS = {
    ("pass", "revoked"): "pass_revoked",
    ("pass", "suspended"): "pass_suspended",
    ("sub", "revoked"): "subject_revoked",
    ("sub", "suspended"): "subject_suspended",
    ("kid", "withdrawn"): "issuer_key_withdrawn",
}


def from_database(session: Session) -> dict[str, str]:
    """Every entry the database implies now (passes that expired are left out: they fail anyway)."""
    entries = {
        pass_key(pid): st.value
        for pid, st in session.execute(select(Pass.pass_id, Pass.status).where(Pass.status != Status.active, Pass.expires_at > utcnow()))
    }
    entries |= {sub_key(p): st.value for p, st in session.execute(select(Person.pseudonym, Person.status).where(Person.status != Status.active))}
    entries |= {kid_key(k): KeyStatus.withdrawn.value for k in session.scalars(select(IssuerKey.kid).where(IssuerKey.status == KeyStatus.withdrawn))}
    return entries


class DenySet:
    def __init__(self, client: redis.Redis | None, prefix: str, bus: Bus) -> None:
        self._client = client
        self._key = prefix + "deny"
        self._local: dict[str, str] = {}
        self._lock = threading.Lock()
        self._generation = 0  # notices applied so far: a reload that overlapped one is dropped
        self._unsubscribe = bus.subscribe(self._on_notice)

    def __len__(self) -> int:
        return len(self._local)

    def reasons(self, *, pass_id: bytes | None = None, sub: bytes | None = None, kid: bytes | None = None) -> list[str]:
        """Deny reasons for what a presented pass names; empty when none is in the set."""
        found = []
        for kind, value in (("pass", pass_id), ("sub", sub), ("kid", kid)):
            if value is not None:
                status = self._local.get(f"{kind}:{value.hex()}")
                if status is not None:
                    found.append(_REASONS[(kind, status)])
        return found

    def status_of(self, key: str) -> str | None:
        return self._local.get(key)

    def rebuild(self, session: Session, *, shared: bool = True) -> bool:
        """Replace the local copy (and with ``shared``, the Redis one) by what the database implies.

        False when a notice was applied while the database was read: that notice may be newer than
        what was read, so the local copy is kept and the caller (or the next backstop tick) reads
        again. Without this a reload could undo a revocation for up to a second."""
        generation = self._generation
        entries = from_database(session)
        if shared and self._client is not None:
            # Build aside and rename: readers never see a half-written or empty hash.
            staging = f"{self._key}:staging:{id(self):x}"
            pipe = self._client.pipeline()
            pipe.delete(staging)
            if entries:
                pipe.hset(staging, mapping=entries)
                pipe.rename(staging, self._key)
            else:
                pipe.delete(self._key)
            pipe.execute()
        return self._replace(entries, generation)

    def _replace(self, entries: dict[str, str], generation: int) -> bool:
        with self._lock:
            if self._generation != generation:
                return False
            self._local = entries
            return True

    def record(self, entries: list[DenyEntry]) -> None:
        """Write changes to the shared copy; the notice that follows updates every node's local copy."""
        if self._client is not None and entries:
            pipe = self._client.pipeline()
            for key, status in entries:
                if status is None:
                    pipe.hdel(self._key, key)
                else:
                    pipe.hset(self._key, key, status)
            pipe.execute()

    def _apply(self, entries: list[list[str | None]]) -> None:
        with self._lock:
            self._generation += 1
            for key, status in entries:
                assert key is not None
                if status is None:
                    self._local.pop(key, None)
                else:
                    self._local[key] = status

    def _reload_shared(self) -> None:
        if self._client is None:
            return
        generation = self._generation
        raw = self._client.hgetall(self._key)
        self._replace({k.decode(): v.decode() for k, v in raw.items()}, generation)

    def _on_notice(self, notice: Notice) -> None:
        if notice.get("kind") == "resync":
            self._reload_shared()
        elif notice.get("deny"):
            self._apply(notice["deny"])

    def watch(self, db: Database, interval_s: float = 1.0) -> Callable[[], None]:
        """Backstop for notices that never arrive (a change committed by a process without Redis,
        e.g. the CLI of a single-node install, or pub/sub lost): reload the local copy whenever the
        feed version moved. One small query per ``interval_s``; returns the stop function."""
        stop = threading.Event()

        def loop() -> None:
            seen = None
            while not stop.wait(interval_s):
                try:
                    with db.session() as session:
                        version = session.scalar(select(SyncVersion.version).where(SyncVersion.id == 1))
                        if version != seen and self.rebuild(session, shared=False):
                            seen = version
                except Exception:  # the database may be briefly away; try again next tick
                    log.warning("deny set backstop could not read the database", exc_info=True)

        thread = threading.Thread(target=loop, name="idsvc-deny-backstop", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(interval_s + 1)

        return halt

    def close(self) -> None:
        self._unsubscribe()
