"""Append, query, export and verify the audit trail.

Appends happen inside the caller's transaction, so a change and its audit event commit together or
not at all. The chain tip lives in one row that each append updates first: on PostgreSQL the row lock
serialises appends from every node; on SQLite the database write lock does the same.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from idsvc.audit import chain
from idsvc.audit.chain import GENESIS_HASH
from idsvc.audit.models import AuditEvent, AuditHead
from idsvc.core.db import utcnow


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
        row = AuditEvent(
            seq=seq,
            # Stored and hashed in UTC: the offset a device sent is not part of the instant.
            at=(new.at or utcnow()).astimezone(UTC),
            kind=new.kind,
            actor=new.actor,
            site_id=new.site_id,
            unit_id=new.unit_id,
            door_id=new.door_id,
            person_id=new.person_id,
            entity_type=new.entity_type,
            entity_id=new.entity_id,
            # Hash exactly what the database will return.
            data=chain.storable_data(new.data),
            prev_hash=prev_hash,
        )
        personal = chain.personal_part(row)
        if personal is not None:
            row.personal_salt = chain.new_salt()
            row.personal_digest = chain.commitment(row.personal_salt, personal)
        row.hash = chain.chain_hash(prev_hash, row)
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


CSV_COLUMNS = [
    "seq", "at", "kind", "actor", "site_id", "unit_id", "door_id", "person_id", "subject", "entity_type", "entity_id", "data",
    "personal_digest", "pseudonymised_in", "prev_hash", "hash",
]


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    """An event as readers and exports see it: every column but the commitment's salt, times in UTC."""
    return {
        "seq": event.seq,
        "at": chain.canonical_time(event.at),
        "kind": event.kind,
        "actor": event.actor,
        "site_id": event.site_id,
        "unit_id": event.unit_id,
        "door_id": event.door_id,
        "person_id": event.person_id,
        "subject": event.subject,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "data": event.data,
        "personal_digest": event.personal_digest,
        "pseudonymised_in": event.pseudonymised_in,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def csv_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """CSV of events as :func:`event_to_dict` gives them (after the reader's view, audit_views.scope.shown)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in rows:
        row = dict(event)
        row["data"] = json.dumps(event["data"], sort_keys=True, ensure_ascii=False)
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
    events_pseudonymised: int = 0


def _personal_problem(event: AuditEvent) -> str | None:
    """Why the event's personal fields do not fit its commitment, or None when they do."""
    personal = chain.personal_part(event)
    if event.personal_salt is not None:
        if event.personal_digest is None or personal is None or chain.commitment(event.personal_salt, personal) != event.personal_digest:
            return f"event {event.seq}: personal fields do not match their commitment (edited)"
        return None
    if event.personal_digest is None:
        return None if personal is None else f"event {event.seq}: personal fields were added (edited)"
    # Pseudonymised: the commitment stays (the chain covers it); nothing it committed to may remain.
    if event.pseudonymised_in is None or event.pseudonymised_in <= event.seq:
        return f"event {event.seq}: commitment without its salt and without a pseudonymisation record (edited)"
    if personal is not None:
        return f"event {event.seq}: personal fields remain after pseudonymisation (edited)"
    return None


def verify(session: Session, chunk: int = 5000) -> VerifyReport:
    """Recompute the chain from the start; report the first events that do not fit.

    Besides each event's hash and link: personal fields must match their commitment, and every
    pseudonymised event must be counted by the pseudonymisation record (``audit.pseudonymised``,
    ``person.erased``) it names, so pseudonymising outside a recorded operation shows too.
    """
    head = session.get(AuditHead, 1)
    problems: list[str] = []
    marked: Counter[int] = Counter()  # pseudonymisation record seq -> events carrying its mark
    recorded: dict[int, int] = {}  # pseudonymisation record seq -> the count it states
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for event in iter_events(session, AuditFilter(), chunk):
        if event.seq != expected_seq:
            problems.append(f"events {expected_seq}..{event.seq - 1} are missing")
        if event.prev_hash != expected_prev:
            problems.append(f"event {event.seq}: prev_hash does not match the event before it")
        if chain.chain_hash(event.prev_hash, event) != event.hash:
            problems.append(f"event {event.seq}: content does not match its hash (edited)")
        personal_problem = _personal_problem(event)
        if personal_problem:
            problems.append(personal_problem)
        if event.pseudonymised_in is not None:
            marked[event.pseudonymised_in] += 1
        if event.kind in chain.PSEUDONYMISATION_RECORDS:
            recorded[event.seq] = int((event.data or {}).get(chain.PSEUDONYMISED_COUNT, -1))
        expected_prev, expected_seq, checked = event.hash, event.seq + 1, checked + 1
        if len(problems) >= 20:
            break
    if len(problems) < 20:
        for record_seq, count in sorted(marked.items()):
            if record_seq not in recorded:
                problems.append(f"{count} events name event {record_seq} as their pseudonymisation record, which is not one (edited)")
            elif recorded[record_seq] != count:
                problems.append(f"event {record_seq} records {recorded[record_seq]} pseudonymised events but {count} carry its mark (edited)")
    if head is None:
        problems.append("the chain head row is missing")
        return VerifyReport(False, checked, 0, "", problems)
    if not problems and (head.seq != expected_seq - 1 or head.hash != expected_prev):
        problems.append(f"head says seq {head.seq} but the trail ends at {expected_seq - 1} (events removed at the end)")
    return VerifyReport(not problems, checked, head.seq, head.hash, problems[:20], sum(marked.values()))


def chain_head(session: Session) -> tuple[int, str]:
    head = session.get(AuditHead, 1)
    return (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
