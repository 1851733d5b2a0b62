"""Erase a person on their request: what is held about them goes, the audit chain still verifies.

In one transaction: they are revoked everywhere (passes, grants, face templates, through the same
verb as ``idsvc revoke person``, so every node and bridge refuses them at once); their consents, API
keys, grants and vehicles are deleted; passes lose their phone key and reason text, and those already
expired are deleted (a revoked pass that is still within its validity stays as a row until it
expires, because a deleted one would read as valid in the status lists bridges hold; the retention
job deletes it then). Every audit event naming them is pseudonymised (recorded by one
``person.erased`` event), the stored device events lose their personal values, and the person row
becomes a tombstone: no personal fields, no audit pseudonym, status revoked, so bridges keep refusing
the pseudonym their old passes carry.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.alarms import door_events
from idsvc.alarms.models import Alarm
from idsvc.audit import service as audit
from idsvc.audit.chain import PERSONAL_DATA_KEYS
from idsvc.audit.models import AuditEvent
from idsvc.audit.pseudonymise import pseudonymise
from idsvc.auth.models import ApiKey
from idsvc.auth.principal import Principal
from idsvc.core.db import utcnow
from idsvc.core.errors import InvalidInput
from idsvc.device_events.models import DeviceEvent
from idsvc.faces.models import FaceConsent
from idsvc.passes.models import Pass
from idsvc.privacy import trail
from idsvc.privacy.requests import ErasureOrExportRequest, person_for_request
from idsvc.registry import personal
from idsvc.registry.models import Grant, Person, Status, Unit, Vehicle
from idsvc.revocation.service import Verb, change_person

REASON = "erased on request"


@dataclass
class Erasure:
    person_id: int
    passes_revoked: int = 0
    passes_deleted: int = 0
    grants_deleted: int = 0
    templates_deleted: int = 0
    consents_deleted: int = 0
    api_keys_deleted: int = 0
    vehicles_deleted: int = 0
    device_events_cleared: int = 0
    audit_events_pseudonymised: int = 0


def _check_request_names_nobody(session: Session, person: Person, request: ErasureOrExportRequest) -> None:
    """The erasure record outlives the person: it must not name them."""
    record = personal.read(session, person)
    text = f"{request.requester} {request.purpose}"
    named = any(value in text for value in (record.display_name, record.external_ref) if value)
    # A phone written any way: its last eight digits (the subscriber number) among the text's digits.
    phone_tail = re.sub(r"\D", "", record.phone or "")[-8:]
    if named or (len(phone_tail) == 8 and phone_tail in re.sub(r"\D", "", text)):
        raise InvalidInput(
            "The request names the person being erased; describe the requester without their name or phone "
            "(e.g. 'the person, in person at the site office'): the erasure record outlives them.",
            code="request_names_the_person",
        )


def erase_person(session: Session, principal: Principal, person_id: int, request: ErasureOrExportRequest) -> Erasure:
    person = person_for_request(session, principal, person_id)
    _check_request_names_nobody(session, person, request)
    done = Erasure(person.id)
    if person.status is not Status.revoked:
        cascade = change_person(session, principal, person.id, Verb.revoke, REASON).cascade
        done.passes_revoked, done.templates_deleted = cascade.get("passes_revoked", 0), cascade.get("templates_deleted", 0)
    now = utcnow()
    plates = _delete_rows(session, person, done, now)
    which = trail.naming_in_clear([person.id])
    if plates:
        # Plate decisions name the vehicle, not the person: its plate goes with them.
        which = which | ((AuditEvent.site_id == person.site_id) & (AuditEvent.kind == "decision") & AuditEvent.data["plate"].as_string().in_(plates))
    record = audit.NewEvent(
        kind="person.erased", actor=principal.actor, site_id=person.site_id,
        data={"requester": request.requester, "purpose": request.purpose, **{k: v for k, v in asdict(done).items() if k != "person_id"}},
    )
    cleared: list[int] = []
    done.audit_events_pseudonymised = pseudonymise(
        session, record, which, trail.pseudonym_lookup(session), copies=lambda seqs: cleared.append(clear_device_events(session, seqs))
    )
    done.device_events_cleared = sum(cleared)
    if not done.audit_events_pseudonymised:
        audit.append(session, record)  # nothing named them in clear any more: the erasure is on record all the same
    personal.erase(person)
    person.audit_pseudonym = None  # the last link between the person and their pseudonymised history
    person.erased_at = now
    session.flush()
    return done


def _delete_rows(session: Session, person: Person, done: Erasure, now: datetime) -> list[str]:
    """Delete what only describes the person; returns the plates of their vehicles."""
    for consent in session.scalars(select(FaceConsent).where(FaceConsent.person_id == person.id)):
        session.delete(consent)
        done.consents_deleted += 1
    for key in session.scalars(select(ApiKey).where(ApiKey.person_id == person.id)):
        session.delete(key)
        done.api_keys_deleted += 1
    vehicles = list(session.scalars(select(Vehicle).where(Vehicle.owner_person_id == person.id)))
    for grant in session.scalars(select(Grant).where((Grant.person_id == person.id) | Grant.vehicle_id.in_([v.id for v in vehicles]))):
        session.delete(grant)  # through the ORM, so the feed and every node learn the grant is gone
        done.grants_deleted += 1
    for vehicle in vehicles:
        session.delete(vehicle)
        done.vehicles_deleted += 1
    for pass_row in session.scalars(select(Pass).where(Pass.person_id == person.id)):
        if pass_row.expires_at <= now:
            session.delete(pass_row)
            done.passes_deleted += 1
        else:
            pass_row.holder_key, pass_row.status_reason = None, REASON
    for unit in session.scalars(select(Unit).where(Unit.owner_id == person.id)):
        unit.owner_id = None
    for other in session.scalars(select(Person).where(Person.created_by_person_id == person.id)):
        other.created_by_person_id = None
    session.flush()
    return [v.plate for v in vehicles]


def clear_device_events(session: Session, audit_seqs: list[int]) -> int:
    """The stored copies of these audit events, if they are device events, keep what happened at the
    door, not the personal values (readings, plates, raw terminal events)."""
    rows = list(session.scalars(select(DeviceEvent).where(DeviceEvent.audit_seq.in_(audit_seqs))))
    for row in rows:
        row.data = _without_personal_values(row.data)
    _clear_alarm_copies(session, rows)
    return len(rows)


def _without_personal_values(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in PERSONAL_DATA_KEYS}


def _clear_alarm_copies(session: Session, events: list[DeviceEvent]) -> None:
    """A door alarm keeps the data of the event that raised (or last repeated) it, a fever reading
    included (alarms/door_events.py): it loses the personal values with the event."""
    by_source = {(door_events.source_of(e), e.event_id) for e in events}
    sources = {source for source, _ in by_source}
    if not sources:
        return
    for alarm in session.scalars(select(Alarm).where(Alarm.source.in_(sources))):
        if (alarm.source, alarm.data.get("event_id")) in by_source:
            alarm.data = _without_personal_values(alarm.data)
