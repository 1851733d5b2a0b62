"""Append, query, export and verify the audit trail.

Appends happen inside the caller's transaction, so a change and its audit event commit together or
not at all. The chain tip lives in one row that each append updates first: on PostgreSQL the row lock
serialises appends from every node; on SQLite the database write lock does the same.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from idsvc.audit.models import AuditEvent, AuditHead
from idsvc.core.db import utcnow

GENESIS_HASH = "0" * 64


@dataclass
class NewEvent:
    kind: str
    actor: str
    site_id: int | None = None
    unit_id: int | None = None
    door_id: int | None = None
    person_id: int | None = None
    entity_type: str | None = None
    entity_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


def _hashed_fields(event: AuditEvent) -> dict[str, Any]:
    """What the chain hash covers: everything but the hashes themselves."""
    return {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "site_id": event.site_id,
        "unit_id": event.unit_id,
        "door_id": event.door_id,
        "person_id": event.person_id,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "data": event.data,
    }


def _canonical(event: AuditEvent) -> bytes:
    return json.dumps(_hashed_fields(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(event)).hexdigest()


def append(session: Session, *events: NewEvent) -> list[AuditEvent]:
    """Append events in order, in the caller's transaction; returns the stored rows."""
    if not events:
        return []
    seq, prev_hash = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + len(events)).returning(AuditHead.seq, AuditHead.hash)
    ).one()
    seq -= len(events)
    rows = []
    for new in events:
        seq += 1
        # Round-trip through JSON now so the hash is computed over exactly what the database returns.
        data = json.loads(json.dumps(new.data, default=str))
        row = AuditEvent(
            seq=seq,
            at=(new.at or utcnow()),
            kind=new.kind,
            actor=new.actor,
            site_id=new.site_id,
            unit_id=new.unit_id,
            door_id=new.door_id,
            person_id=new.person_id,
            entity_type=new.entity_type,
            entity_id=new.entity_id,
            data=data,
            prev_hash=prev_hash,
        )
        row.hash = chain_hash(prev_hash, row)
        prev_hash = row.hash
        rows.append(row)
    session.add_all(rows)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev_hash))
    return rows


@dataclass
class AuditFilter:
    site_ids: Sequence[int] | None = None  # None = every site
    unit_ids: Sequence[int] | None = None
    person_id: int | None = None
    site_id: int | None = None
    door_id: int | None = None
    actor: str | None = None
    kind: str | None = None  # exact kind, or a prefix ending in "." such as "grant."
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int | None = None


def _filtered(flt: AuditFilter) -> Select[tuple[AuditEvent]]:
    stmt = select(AuditEvent)
    if flt.site_ids is not None:
        stmt = stmt.where(AuditEvent.site_id.in_(flt.site_ids))
    if flt.unit_ids is not None:
        stmt = stmt.where(AuditEvent.unit_id.in_(flt.unit_ids))
    for column, value in (
        (AuditEvent.site_id, flt.site_id),
        (AuditEvent.door_id, flt.door_id),
        (AuditEvent.person_id, flt.person_id),
        (AuditEvent.actor, flt.actor),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if flt.kind:
        stmt = stmt.where(AuditEvent.kind.startswith(flt.kind, autoescape=True) if flt.kind.endswith(".") else AuditEvent.kind == flt.kind)
    if flt.since is not None:
        stmt = stmt.where(AuditEvent.at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(AuditEvent.at < flt.until)
    if flt.after_seq is not None:
        stmt = stmt.where(AuditEvent.seq > flt.after_seq)
    return stmt.order_by(AuditEvent.seq)


def query(session: Session, flt: AuditFilter, limit: int) -> list[AuditEvent]:
    return list(session.scalars(_filtered(flt).limit(limit)))


def iter_events(session: Session, flt: AuditFilter, chunk: int = 2000) -> Iterator[AuditEvent]:
    """Every matching event in order, read in chunks so exports of millions of rows stay small."""
    after = flt.after_seq
    while True:
        batch = list(session.scalars(_filtered(AuditFilter(**{**flt.__dict__, "after_seq": after})).limit(chunk)))
        yield from batch
        if len(batch) < chunk:
            return
        after = batch[-1].seq


CSV_COLUMNS = ["seq", "at", "kind", "actor", "site_id", "unit_id", "door_id", "person_id", "entity_type", "entity_id", "data", "hash"]


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    return {**_hashed_fields(event), "prev_hash": event.prev_hash, "hash": event.hash}


def csv_lines(events: Iterator[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        row = event_to_dict(event)
        row["data"] = json.dumps(event.data, sort_keys=True, ensure_ascii=False)
        writer.writerow([row[c] for c in CSV_COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@dataclass
class VerifyReport:
    ok: bool
    events_checked: int
    head_seq: int
    head_hash: str
    problems: list[str]


def verify(session: Session, chunk: int = 5000) -> VerifyReport:
    """Recompute the chain from the start; report the first events that do not fit."""
    head = session.get(AuditHead, 1)
    problems: list[str] = []
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for event in iter_events(session, AuditFilter(), chunk):
        if event.seq != expected_seq:
            problems.append(f"events {expected_seq}..{event.seq - 1} are missing")
        if event.prev_hash != expected_prev:
            problems.append(f"event {event.seq}: prev_hash does not match the event before it")
        if chain_hash(event.prev_hash, event) != event.hash:
            problems.append(f"event {event.seq}: content does not match its hash (edited)")
        expected_prev, expected_seq, checked = event.hash, event.seq + 1, checked + 1
        if len(problems) >= 20:
            break
    if head is None:
        problems.append("the chain head row is missing")
        return VerifyReport(False, checked, 0, "", problems)
    if not problems and (head.seq != expected_seq - 1 or head.hash != expected_prev):
        problems.append(f"head says seq {head.seq} but the trail ends at {expected_seq - 1} (events removed at the end)")
    return VerifyReport(not problems, checked, head.seq, head.hash, problems)


def chain_head(session: Session) -> tuple[int, str]:
    head = session.get(AuditHead, 1)
    return (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
