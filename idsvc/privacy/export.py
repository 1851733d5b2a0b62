"""One JSON document of everything held about a person (PIPL art. 45), for an admin acting on their request.

Registry rows (the person with their opened personal fields, grants and tenancies, vehicles, units
they own), passes, API keys, face consents and template metadata (never the template), every audit
event about them (door decisions included, pseudonymised ones too: their pseudonym is still known
while they exist) and the device events that name them. The export itself is audited with who asked
and why.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.audit.models import AuditEvent
from idsvc.auth.models import ApiKey
from idsvc.auth.principal import Principal
from idsvc.core.db import utcnow
from idsvc.device_events.models import DeviceEvent
from idsvc.faces.service import face_data
from idsvc.passes.issuing import pass_to_dict
from idsvc.passes.models import Pass
from idsvc.privacy import trail
from idsvc.privacy.requests import ErasureOrExportRequest, person_for_request
from idsvc.registry import schemas
from idsvc.registry.models import Grant, Site, Unit, Vehicle

FORMAT = "idsvc.person-export/1"


def export_person(session: Session, principal: Principal, person_id: int, request: ErasureOrExportRequest) -> dict[str, Any]:
    person = person_for_request(session, principal, person_id)
    site = session.get(Site, person.site_id)
    rows = {
        "grants": session.scalars(select(Grant).where(Grant.person_id == person.id).order_by(Grant.id)).all(),
        "vehicles": session.scalars(select(Vehicle).where(Vehicle.owner_person_id == person.id).order_by(Vehicle.id)).all(),
        "units": session.scalars(select(Unit).where(Unit.owner_id == person.id).order_by(Unit.id)).all(),
        "passes": session.scalars(select(Pass).where(Pass.person_id == person.id).order_by(Pass.id)).all(),
        "keys": session.scalars(select(ApiKey).where(ApiKey.person_id == person.id).order_by(ApiKey.id)).all(),
        "events": session.scalars(select(AuditEvent).where(trail.naming(person)).order_by(AuditEvent.seq)).all(),
        "device_events": session.scalars(
            select(DeviceEvent).where(DeviceEvent.audit_seq.in_(select(AuditEvent.seq).where(trail.naming(person)))).order_by(DeviceEvent.id)
        ).all(),
    }
    document = {
        "format": FORMAT,
        "exported_at": utcnow(),
        "requested_by": request.requester,
        "purpose": request.purpose,
        "person": {
            **schemas.PersonOut.of(session, person).model_dump(mode="json"),
            "created_at": person.created_at,
            "contact_deleted_at": person.contact_deleted_at,
            "audit_pseudonym": person.audit_pseudonym,
        },
        "site": {"id": site.id, "code": site.code, "name": site.name} if site else None,
        "grants": [schemas.GrantOut.model_validate(g).model_dump(mode="json") | {"ended_at": g.ended_at} for g in rows["grants"]],
        "vehicles": [schemas.VehicleOut.model_validate(v).model_dump(mode="json") for v in rows["vehicles"]],
        "units_owned": [{"id": u.id, "label": u.label, "building_id": u.building_id, "code": u.code} for u in rows["units"]],
        "passes": [pass_to_dict(p) for p in rows["passes"]],
        "api_keys": [
            {"id": k.id, "role": k.role.value, "label": k.label, "prefix": k.token_prefix, "created_at": k.created_at, "expires_at": k.expires_at, "revoked_at": k.revoked_at}
            for k in rows["keys"]
        ],
        "face": face_data(session, person),
        "audit_events": [audit.event_to_dict(e) for e in rows["events"]],
        "device_events": [
            {"event_id": d.event_id, "kind": d.kind, "at": d.at, "door_id": d.door_id, "device_id": d.device_id, "data": d.data} for d in rows["device_events"]
        ],
    }
    audit.append(session, audit.NewEvent(
        kind="person.exported", actor=principal.actor, site_id=person.site_id, person_id=person.id, entity_type="person", entity_id=person.id,
        data={"requester": request.requester, "purpose": request.purpose, "audit_events": len(rows["events"])},
    ))
    return document
