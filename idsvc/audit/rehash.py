"""Move an existing trail from hash scheme 1 to scheme 2 (audit/chain.py), honestly.

Scheme 1 hashed every field in clear, ``at`` as the appending code's ``isoformat()``, so an event
appended with a ``+08:00`` time was hashed over that text while the database hands back UTC: such
events failed verification without being edited (issue 10). Scheme 2 needs a commitment to each
event's personal fields, so every hash in the chain changes.

The re-hash first checks each event against its scheme-1 hash, as it was written: an event that fits
only with ``at`` shown at another UTC offset is counted as repaired (the known defect), any other
misfit is recorded as a problem. Then it gives each event a salt, a commitment and a scheme-2 hash,
and appends one ``audit.rehashed`` event stating the scheme-1 head it replaced, how many events it
re-hashed, and what the scheme-1 check found. A witness that stored the scheme-1 head can compare it
with that event; a chain that was already broken stays on record as broken.

Run by migration 0006 inside the upgrade's transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from idsvc.audit import chain
from idsvc.core.db import UTCDateTime, utcnow

_events = sa.table(
    "audit_events",
    sa.column("seq", sa.BigInteger),
    sa.column("at", UTCDateTime()),
    sa.column("kind", sa.String),
    sa.column("actor", sa.String),
    sa.column("site_id", sa.Integer),
    sa.column("unit_id", sa.Integer),
    sa.column("door_id", sa.Integer),
    sa.column("person_id", sa.Integer),
    sa.column("entity_type", sa.String),
    sa.column("entity_id", sa.Integer),
    sa.column("data", sa.JSON),
    sa.column("personal_salt", sa.LargeBinary),
    sa.column("personal_digest", sa.String),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)
_head = sa.table("audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.BigInteger), sa.column("hash", sa.String))

# Every offset in use somewhere, in quarter hours from -12:00 to +14:00; +08:00 first (China).
_OFFSETS = [timedelta(hours=8)] + [timedelta(minutes=15 * q) for q in range(-48, 57) if q not in (0, 32)]


def scheme1_hash(prev_hash: str, row: Any, at_text: str) -> str:
    fields = {
        "seq": row.seq, "at": at_text, "kind": row.kind, "actor": row.actor, "site_id": row.site_id, "unit_id": row.unit_id,
        "door_id": row.door_id, "person_id": row.person_id, "entity_type": row.entity_type, "entity_id": row.entity_id, "data": row.data,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical).hexdigest()


def _fits_scheme1(row: Any) -> tuple[bool, bool]:
    """(fits, only at another offset): does the stored hash fit the row as scheme 1 wrote it?"""
    if scheme1_hash(row.prev_hash, row, row.at.isoformat()) == row.hash:
        return True, False
    for offset in _OFFSETS:
        if scheme1_hash(row.prev_hash, row, row.at.astimezone(timezone(offset)).isoformat()) == row.hash:
            return True, True
    return False, False


@dataclass
class RehashReport:
    events: int = 0
    legacy_head_seq: int = 0
    legacy_head_hash: str = chain.GENESIS_HASH
    offset_repaired: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def note(self, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < 20:
            self.problems.append(problem)


def rehash(connection: Connection, chunk: int = 2000) -> RehashReport:
    """Re-hash every event under scheme 2 and record it; a no-op on an empty trail."""
    report = RehashReport()
    head = connection.execute(sa.select(_head.c.seq, _head.c.hash).where(_head.c.id == 1)).first()
    if head is None or head.seq == 0:
        return report
    report.legacy_head_seq, report.legacy_head_hash = int(head.seq), str(head.hash)
    expected_prev, new_prev, after = chain.GENESIS_HASH, chain.GENESIS_HASH, 0
    while True:
        rows = list(connection.execute(sa.select(_events).where(_events.c.seq > after).order_by(_events.c.seq).limit(chunk)))
        if not rows:
            break
        updates = []
        for row in rows:
            if row.prev_hash != expected_prev:
                report.note(f"event {row.seq}: prev_hash did not match the event before it")
            fits, repaired = _fits_scheme1(row)
            if repaired:
                report.offset_repaired.append(row.seq)
            elif not fits:
                report.note(f"event {row.seq}: content did not match its scheme-1 hash")
            expected_prev = row.hash
            event = SimpleNamespace(**row._mapping)
            event.data = chain.storable_data(row.data or {})
            personal = chain.personal_part(event)
            event.personal_salt = chain.new_salt() if personal is not None else None
            event.personal_digest = chain.commitment(event.personal_salt, personal) if personal is not None else None
            event.prev_hash = new_prev
            event.hash = new_prev = chain.chain_hash(new_prev, event)
            updates.append({"s": row.seq, "d": event.data, "ps": event.personal_salt, "pd": event.personal_digest, "ph": event.prev_hash, "h": event.hash})
        connection.execute(
            _events.update().where(_events.c.seq == sa.bindparam("s")).values(
                data=sa.bindparam("d"), personal_salt=sa.bindparam("ps"), personal_digest=sa.bindparam("pd"),
                prev_hash=sa.bindparam("ph"), hash=sa.bindparam("h"),
            ),
            updates,
        )
        report.events += len(rows)
        after = rows[-1].seq
    if after != report.legacy_head_seq or expected_prev != report.legacy_head_hash:
        report.note(f"the head said seq {report.legacy_head_seq} but the trail ended at {after}")
    _record(connection, report, after, new_prev)
    return report


def _record(connection: Connection, report: RehashReport, last_seq: int, prev_hash: str) -> None:
    record = SimpleNamespace(
        seq=last_seq + 1, at=utcnow(), kind="audit.rehashed", actor="system:migration", site_id=None, unit_id=None, door_id=None,
        person_id=None, entity_type=None, entity_id=None, personal_digest=None,
        data=chain.storable_data({
            "scheme": chain.SCHEME,
            "events": report.events,
            "legacy_head": {"seq": report.legacy_head_seq, "hash": report.legacy_head_hash},
            "legacy_check": {
                "ok": report.problem_count == 0,
                "offset_repaired": len(report.offset_repaired),
                "offset_repaired_first": report.offset_repaired[:20],
                "problems": report.problem_count,
                "first_problems": report.problems,
            },
        }),
    )
    record.hash = chain.chain_hash(prev_hash, record)
    connection.execute(_events.insert().values(
        seq=record.seq, at=record.at, kind=record.kind, actor=record.actor, data=record.data, prev_hash=prev_hash, hash=record.hash,
    ))
    connection.execute(_head.update().where(_head.c.id == 1).values(seq=record.seq, hash=record.hash))

