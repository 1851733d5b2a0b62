"""The instant deny set: revoked or suspended pass ids, person pseudonyms and withdrawn issuer kids.

Three copies, one meaning. The database is the truth. Redis holds the shared copy (one hash, field
``pass:<hex>`` / ``sub:<hex>`` / ``kid:<hex>``, value the status) that a node loads when it starts or
after it lost the notice channel. Every node holds an in-process dict, because a Redis round trip
costs more than the whole signature check (design/performance.md), kept fresh by the notices that
sync/changes.py publishes after each commit. Only random identifiers are keys, never row ids, so an
entry can never land on another person after a database is reset or restored.
"""

from __future__ import annotations

import threading

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.core.db import utcnow
from idsvc.passes.models import IssuerKey, KeyStatus, Pass
from idsvc.registry.models import Person, Status
from idsvc.revocation.bus import Bus, Notice

Entry = tuple[str, str | None]  # ("pass:<hex>", "revoked"), or (key, None) to remove
_REASONS = {
    ("pass", "revoked"): "pass_revoked",
    ("pass", "suspended"): "pass_suspended",
    ("sub", "revoked"): "subject_revoked",
    ("sub", "suspended"): "subject_suspended",
    ("kid", "withdrawn"): "issuer_key_withdrawn",
}


def pass_key(pass_id: bytes | str) -> str:
    return "pass:" + (pass_id.hex() if isinstance(pass_id, bytes) else pass_id)


def sub_key(pseudonym: bytes | str) -> str:
    return "sub:" + (pseudonym.hex() if isinstance(pseudonym, bytes) else pseudonym)


def kid_key(kid: bytes | str) -> str:
    return "kid:" + (kid.hex() if isinstance(kid, bytes) else kid)


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

    def rebuild(self, session: Session) -> int:
        """Fill the local copy (and the shared one) from the database; at start-up and on demand."""
        entries = from_database(session)
        if self._client is not None:
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
        with self._lock:
            self._local = dict(entries)
        return len(entries)

    def record(self, entries: list[Entry]) -> None:
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
            for key, status in entries:
                assert key is not None
                if status is None:
                    self._local.pop(key, None)
                else:
                    self._local[key] = status

    def _reload_shared(self) -> None:
        if self._client is None:
            return
        raw = self._client.hgetall(self._key)
        with self._lock:
            self._local = {k.decode(): v.decode() for k, v in raw.items()}

    def _on_notice(self, notice: Notice) -> None:
        if notice.get("kind") == "resync":
            self._reload_shared()
        elif notice.get("deny"):
            self._apply(notice["deny"])

    def close(self) -> None:
        self._unsubscribe()
