"""Replace the people named by audit events with pseudonyms, keeping the chain verifiable.

Used by retention (decisions older than a site's limit) and by erasure (every event about a person).
A pseudonymised event keeps its public fields and its commitment; its person references become the
person's audit pseudonym, its personal data values and the commitment's salt are deleted, and it
names the event that records the operation (``pseudonymised_in``), whose data states how many events
it pseudonymised, so ``verify`` can tell a recorded pseudonymisation from an edit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from idsvc.audit import chain
from idsvc.audit.models import AuditEvent, AuditHead
from idsvc.audit.service import NewEvent, append

# person ids -> their audit pseudonyms (an id the caller does not know maps to a fresh random one)
PseudonymLookup = Callable[[Iterable[int]], dict[int, str]]


def _person_ids(event: AuditEvent) -> set[int]:
    ids = {event.person_id} if event.person_id is not None else set()
    if chain.is_person_actor(event.actor):
        ids.add(int(event.actor.removeprefix(chain.PERSON_ACTOR_PREFIX)))
    if event.entity_type == "person" and event.entity_id is not None:
        ids.add(event.entity_id)
    return ids


def pseudonymise(
    session: Session,
    record: NewEvent,
    which: ColumnElement[bool],
    pseudonyms: PseudonymLookup,
    limit: int | None = None,
    copies: Callable[[list[int]], None] | None = None,
) -> int:
    """Pseudonymise up to ``limit`` events matching ``which`` that still hold personal fields, and
    append ``record`` (its data gains the count) as their record. ``copies`` is told the sequence
    numbers first, for stores that keep copies of events (device events). Returns how many were
    changed; with none to change, nothing is appended."""
    # The tip's lock first: no event can be appended between choosing the events and recording them.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
    stmt = select(AuditEvent).where(which, AuditEvent.personal_salt.is_not(None)).order_by(AuditEvent.seq)
    rows = list(session.scalars(stmt.limit(limit) if limit else stmt))
    if not rows:
        return 0
    if copies is not None:
        copies([row.seq for row in rows])
    names = pseudonyms({pid for row in rows for pid in _person_ids(row)})
    (stored,) = append(session, replace(record, data={**record.data, chain.PSEUDONYMISED_COUNT: len(rows)}))
    for row in rows:
        subject_id = row.person_id if row.person_id is not None else (row.entity_id if row.entity_type == "person" else None)
        row.subject = names[subject_id] if subject_id is not None else row.subject
        row.person_id = None
        if row.entity_type == "person":
            row.entity_id = None
        if chain.is_person_actor(row.actor):
            row.actor = chain.PSEUDONYM_ACTOR_PREFIX + names[int(row.actor.removeprefix(chain.PERSON_ACTOR_PREFIX))]
        row.data = {k: v for k, v in row.data.items() if k not in chain.PERSONAL_DATA_KEYS}
        row.personal_salt = None
        row.pseudonymised_in = stored.seq
    session.flush()
    return len(rows)
