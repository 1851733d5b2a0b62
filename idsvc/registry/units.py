"""Units ("one house, one code") and tenancies: a landlord authorises tenants for a unit's doors."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.db import utcnow
from idsvc.core.errors import Conflict, Forbidden, InvalidInput
from idsvc.registry import events, schemas
from idsvc.registry.grants import add_grant
from idsvc.registry.sites import get_building
from idsvc.registry.models import Building, Door, DoorGroup, DoorKind, Grant, Person, Status, Unit
from idsvc.registry.scope import can_manage_unit, can_see_person, can_see_unit, load, not_visible, tenant_unit_ids, unit_door_group_id

# Unit codes are printed as QR and read aloud: no 0/O/1/I ambiguity, ~60 bits of randomness.
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_unit_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))


def _check_owner(session: Session, owner_id: int, site_id: int) -> None:
    owner = load(session, Person, owner_id, "person")
    if owner.site_id != site_id:
        raise InvalidInput("The owner must be a person of the unit's site.", code="person_not_in_site")


def _group_name(session: Session, unit: Unit, building_code: str, group_id: int | None = None) -> str:
    """'unit b1/101'; if a group of the site already has that name (an admin's, or a relabelled unit's
    from before), the unit id makes it unique, so registering or relabelling never trips over it."""
    name = f"unit {building_code}/{unit.label}"
    taken = session.scalar(select(DoorGroup.id).where(DoorGroup.site_id == unit.site_id, DoorGroup.name == name, DoorGroup.id != (group_id or 0)))
    return name if taken is None else f"{name} (unit {unit.id})"


def register_unit(session: Session, principal: Principal, body: schemas.UnitIn) -> Unit:
    building = get_building(session, principal, body.building_id)  # 404 outside the caller's site
    owner_id = body.owner_id
    if principal.role is Role.owner:
        if owner_id not in (None, principal.person_id):
            raise Forbidden("An owner registers units for themself only.", code="forbidden_scope")
        owner_id = principal.person_id
    else:
        principal.require_site_admin(building.site_id)
        if owner_id is not None:
            _check_owner(session, owner_id, building.site_id)
    if session.scalar(select(Unit.id).where(Unit.building_id == building.id, Unit.label == body.label)) is not None:
        raise Conflict(f"Unit '{body.label}' exists in this building already.", code="duplicate_label")
    unit = Unit(site_id=building.site_id, building_id=building.id, label=body.label, kind=body.kind, owner_id=owner_id, code=new_unit_code())
    session.add(unit)
    session.flush()
    # Every unit has its own door group: its doors plus the entrances of its building.
    entrances = list(session.scalars(select(Door).where(Door.building_id == building.id, Door.unit_id.is_(None), Door.kind == DoorKind.entrance)))
    group = DoorGroup(site_id=unit.site_id, name=_group_name(session, unit, building.code), unit_id=unit.id, doors=entrances)
    session.add(group)
    session.flush()
    events.record(
        session, principal, "unit.registered", entity_type="unit", entity_id=unit.id, site_id=unit.site_id, unit_id=unit.id,
        person_id=owner_id, data={"building_id": building.id, "label": unit.label, "kind": unit.kind.value, "code": unit.code, "door_group_id": group.id},
    )
    return unit


def list_units(session: Session, principal: Principal, site_id: int | None = None, building_id: int | None = None) -> list[Unit]:
    stmt = select(Unit).order_by(Unit.id)
    if principal.role is Role.owner:
        stmt = stmt.where(Unit.owner_id == principal.person_id)
    elif principal.role is Role.tenant:
        stmt = stmt.where(Unit.id.in_(tenant_unit_ids(session, principal.person_id or 0)))
    elif not principal.is_district_admin:
        principal.require_role(Role.site_admin)
        stmt = stmt.where(Unit.site_id == principal.site_id)
    if site_id is not None:
        stmt = stmt.where(Unit.site_id == site_id)
    if building_id is not None:
        stmt = stmt.where(Unit.building_id == building_id)
    return list(session.scalars(stmt))


def get_unit(session: Session, principal: Principal, unit_id: int) -> Unit:
    unit = load(session, Unit, unit_id, "unit")
    if not can_see_unit(session, principal, unit):
        raise not_visible("unit", unit_id)
    return unit


def _managed_unit(session: Session, principal: Principal, unit_id: int) -> Unit:
    unit = get_unit(session, principal, unit_id)
    if not can_manage_unit(principal, unit):
        raise Forbidden("Only the unit's owner or the site's admins may do this.", code="forbidden_scope")
    return unit


def update_unit(session: Session, principal: Principal, unit_id: int, body: schemas.UnitPatch) -> Unit:
    unit = _managed_unit(session, principal, unit_id)
    patch = body.model_dump(exclude_unset=True)
    if "owner_id" in patch:
        principal.require_site_admin(unit.site_id)  # handing a unit to another landlord is the site's call
        if patch["owner_id"] is not None:
            _check_owner(session, patch["owner_id"], unit.site_id)
    if "label" in patch and patch["label"] != unit.label and session.scalar(
        select(Unit.id).where(Unit.building_id == unit.building_id, Unit.label == patch["label"])
    ):
        raise Conflict(f"Unit '{patch['label']}' exists in this building already.", code="duplicate_label")
    changed = events.changes(unit, {k: v for k, v in patch.items() if v is not None or k == "owner_id"})
    group = session.scalar(select(DoorGroup).where(DoorGroup.unit_id == unit.id))
    if "label" in changed and group is not None:
        group.name = _group_name(session, unit, session.get(Building, unit.building_id).code, group.id)  # type: ignore[union-attr]
    if changed:
        events.record(session, principal, "unit.updated", entity_type="unit", entity_id=unit.id, site_id=unit.site_id, unit_id=unit.id, data=changed)
    return unit


def add_tenant(session: Session, principal: Principal, unit_id: int, body: schemas.TenancyIn) -> Grant:
    unit = _managed_unit(session, principal, unit_id)
    person = load(session, Person, body.person_id, "person")
    if not can_see_person(session, principal, person):
        raise not_visible("person", body.person_id)
    group_id = unit_door_group_id(session, unit.id)
    if group_id is None:
        raise Conflict("This unit has no door group; ask the site admin to repair it.", code="unit_without_doors")
    grant = add_grant(session, principal, site_id=unit.site_id, door_group_id=group_id, window=body, person_id=person.id, unit_id=unit.id)
    events.record(session, principal, "tenancy.started", entity_type="grant", entity_id=grant.id, site_id=unit.site_id, unit_id=unit.id, person_id=person.id)
    return grant


def list_tenancies(session: Session, principal: Principal, unit_id: int, include_ended: bool = False) -> list[Grant]:
    unit = _managed_unit(session, principal, unit_id)
    stmt = select(Grant).where(Grant.unit_id == unit.id, Grant.person_id.is_not(None)).order_by(Grant.id)
    if not include_ended:
        stmt = stmt.where(Grant.status != Status.revoked, Grant.valid_until > utcnow())
    return list(session.scalars(stmt))


def end_tenancy(session: Session, principal: Principal, unit_id: int, person_id: int, reason: str) -> list[Grant]:
    """Take a tenant off a unit: every live grant they hold for it is revoked."""
    unit = _managed_unit(session, principal, unit_id)
    grants = list(
        session.scalars(select(Grant).where(Grant.unit_id == unit.id, Grant.person_id == person_id, Grant.status != Status.revoked))
    )
    if not grants:
        raise not_visible("tenancy", person_id)
    now = utcnow()
    for grant in grants:
        grant.status, grant.status_reason, grant.ended_at = Status.revoked, reason, now
        events.record(session, principal, "grant.revoked", entity_type="grant", entity_id=grant.id, site_id=unit.site_id, unit_id=unit.id, person_id=person_id, data={"reason": reason})
    events.record(session, principal, "tenancy.ended", entity_type="unit", entity_id=unit.id, site_id=unit.site_id, unit_id=unit.id, person_id=person_id, data={"reason": reason, "grant_ids": [g.id for g in grants]})
    return grants
