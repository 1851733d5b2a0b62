"""Grants: who may pass which door group, when. Also the lifecycle verbs (suspend, reinstate, revoke)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.db import utcnow
from idsvc.core.errors import Conflict, Forbidden, InvalidInput
from idsvc.registry import events, schemas
from idsvc.registry.doors import get_door_group
from idsvc.registry.models import DoorGroup, Grant, Person, Status, Unit, Vehicle
from idsvc.registry.scope import can_manage_unit, load, not_visible, owned_unit_ids


def grant_end(grant: Grant) -> datetime:
    """When the grant stopped (or will stop) letting anyone in: its revocation, else its window's end."""
    if grant.status is Status.revoked:
        return grant.ended_at or grant.updated_at
    return grant.valid_until


def last_grant_ended(grants: Iterable[Grant], now: datetime) -> datetime | None:
    """When the last of these grants ended; None while one is current or still to come (or there are none)."""
    ends = []
    for grant in grants:
        if grant.status is not Status.revoked and grant.valid_until > now:
            return None
        ends.append(grant_end(grant))
    return max(ends, default=None)


def _grant_fields(body: schemas.Window) -> dict[str, object]:
    return {
        "valid_from": body.valid_from,
        "valid_until": body.valid_until,
        "schedule": [w.model_dump() for w in body.schedule] if body.schedule else None,
        "max_uses": body.max_uses,
    }


def add_grant(
    session: Session,
    principal: Principal,
    *,
    site_id: int,
    door_group_id: int,
    window: schemas.Window,
    person_id: int | None = None,
    vehicle_id: int | None = None,
    unit_id: int | None = None,
) -> Grant:
    """Create a grant after checking that subject and door group are of the site; callers check the role."""
    group = load(session, DoorGroup, door_group_id, "door_group")
    if group.site_id != site_id:
        if not principal.administers_site(group.site_id):
            raise not_visible("door_group", door_group_id)  # another site's: answered like a missing one
        raise InvalidInput("The door group belongs to another site.", code="door_group_not_in_site")
    what, subject_id = ("person", person_id) if person_id is not None else ("vehicle", vehicle_id)
    subject: Person | Vehicle = load(session, Person if what == "person" else Vehicle, subject_id, what)  # type: ignore[arg-type]
    if subject.site_id != site_id:
        if not principal.administers_site(subject.site_id):
            raise not_visible(what, subject_id)  # type: ignore[arg-type]
        raise InvalidInput("The person or vehicle belongs to another site.", code="subject_not_in_site")
    if subject.status is Status.revoked:
        raise Conflict("This person or vehicle is revoked; reinstate them first.", code="subject_revoked")
    grant = Grant(
        site_id=site_id,
        person_id=person_id,
        vehicle_id=vehicle_id,
        door_group_id=group.id,
        unit_id=unit_id,
        created_by=principal.actor,
        **_grant_fields(window),
    )
    session.add(grant)
    session.flush()
    events.record(
        session, principal, "grant.created", entity_type="grant", entity_id=grant.id, site_id=site_id, unit_id=unit_id,
        person_id=person_id, data={"door_group_id": group.id, "vehicle_id": vehicle_id, **window.model_dump(mode="json")},
    )
    return grant


def create_grant(session: Session, principal: Principal, body: schemas.GrantIn) -> Grant:
    group = get_door_group(session, principal, body.door_group_id)  # site admins only; 404 for everyone else
    return add_grant(
        session, principal, site_id=group.site_id, door_group_id=group.id, window=body,
        person_id=body.person_id, vehicle_id=body.vehicle_id, unit_id=group.unit_id,
    )


def _may_see(session: Session, principal: Principal, grant: Grant) -> bool:
    if principal.administers_site(grant.site_id):
        return True
    if principal.role is Role.owner:
        return grant.unit_id is not None and grant.unit_id in owned_unit_ids(session, principal)
    return principal.role is Role.tenant and grant.person_id == principal.person_id


def get_grant(session: Session, principal: Principal, grant_id: int) -> Grant:
    grant = load(session, Grant, grant_id, "grant")
    if not _may_see(session, principal, grant):
        raise not_visible("grant", grant_id)
    return grant


def list_grants(
    session: Session,
    principal: Principal,
    *,
    site_id: int | None = None,
    person_id: int | None = None,
    vehicle_id: int | None = None,
    unit_id: int | None = None,
    status: Status | None = None,
) -> list[Grant]:
    stmt = select(Grant).order_by(Grant.id)
    if principal.role is Role.owner:
        stmt = stmt.where(Grant.unit_id.in_(owned_unit_ids(session, principal)))
    elif principal.role is Role.tenant:
        stmt = stmt.where(Grant.person_id == principal.person_id)
    elif not principal.is_district_admin:
        principal.require_role(Role.site_admin)
        stmt = stmt.where(Grant.site_id == principal.site_id)
    for column, value in ((Grant.site_id, site_id), (Grant.person_id, person_id), (Grant.vehicle_id, vehicle_id), (Grant.unit_id, unit_id), (Grant.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    return list(session.scalars(stmt.limit(5000)))


def _may_change(session: Session, principal: Principal, grant: Grant) -> None:
    if principal.administers_site(grant.site_id):
        return
    if principal.role is Role.owner and grant.unit_id is not None:
        unit = session.get(Unit, grant.unit_id)
        if unit is not None and can_manage_unit(principal, unit):
            return
    raise Forbidden("Only the site's admins, or the owner of the unit it was granted for, may change this grant.", code="forbidden_scope")


_TRANSITIONS = {
    "suspend": ({Status.active}, Status.suspended),
    "reinstate": ({Status.suspended}, Status.active),
    "revoke": ({Status.active, Status.suspended}, Status.revoked),
}


def change_status(session: Session, principal: Principal, grant_id: int, verb: str, reason: str) -> Grant:
    grant = get_grant(session, principal, grant_id)
    _may_change(session, principal, grant)
    allowed_from, target = _TRANSITIONS[verb]
    if grant.status not in allowed_from:
        raise Conflict(f"A {grant.status.value} grant cannot be {target.value}.", code="invalid_transition")
    grant.status, grant.status_reason = target, reason
    if target is Status.revoked:
        grant.ended_at = utcnow()
    events.record(
        session, principal, f"grant.{target.value}" if verb != "reinstate" else "grant.reinstated", entity_type="grant",
        entity_id=grant.id, site_id=grant.site_id, unit_id=grant.unit_id, person_id=grant.person_id, data={"reason": reason},
    )
    return grant
