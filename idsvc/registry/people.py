"""People and vehicles. Personal fields are sealed (registry/personal.py); reading a person's record as
staff is itself audited (privacy.md)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from idsvc.registry import events, personal, schemas, site_settings
from idsvc.registry.models import Person, PersonKind, Site, Vehicle
from idsvc.registry.scope import admin_listing, can_see_person, in_site, listed_site, load, not_visible, visible_person_ids_for_owner

# An owner registers the people who live or work in their units, never staff or other owners.
OWNER_MAY_CREATE = {PersonKind.tenant, PersonKind.resident, PersonKind.visitor, PersonKind.employee}


def _check_registration_fields(session: Session, site_id: int, given: dict[str, object]) -> None:
    """Registration fields are collected only where the site turned them on (data minimisation)."""
    site = session.get(Site, site_id)
    enabled = set(site_settings.parse(site.settings if site else None).registration.fields)
    refused = sorted(name for name in personal.REGISTRATION_FIELDS if given.get(name) is not None and name not in enabled)
    if refused:
        raise InvalidInput(
            f"This site does not collect {', '.join(refused)}; a site admin turns fields on in the site's registration settings.",
            code="registration_field_not_enabled", details={"fields": refused, "enabled": sorted(enabled)},
        )


def create_person(session: Session, principal: Principal, body: schemas.PersonIn) -> Person:
    created_by = None
    if principal.role is Role.owner:
        if principal.site_id != body.site_id:
            raise Forbidden("Owners register people in their own site only.", code="forbidden_scope")
        if body.kind not in OWNER_MAY_CREATE:
            raise Forbidden(f"Owners may register {', '.join(sorted(k.value for k in OWNER_MAY_CREATE))} only.", code="forbidden_kind")
        created_by = principal.person_id
    else:
        principal.require_site_admin(body.site_id)
    fields = body.model_dump(exclude={"site_id", "kind"})
    _check_registration_fields(session, body.site_id, fields)
    if body.external_ref and personal.external_ref_taken(session, body.site_id, body.external_ref):
        raise Conflict("A person with this external_ref exists in this site.", code="duplicate_external_ref")
    person = Person(
        site_id=body.site_id, kind=body.kind, pseudonym=secrets.token_hex(16), audit_pseudonym=secrets.token_hex(16), created_by_person_id=created_by
    )
    personal.write(session, person, personal.PersonalRecord(**fields))
    session.add(person)
    session.flush()
    events.record(session, principal, "person.created", entity_type="person", entity_id=person.id, site_id=person.site_id, person_id=person.id, data={"kind": body.kind.value})
    return person


def list_people(session: Session, principal: Principal, site_id: int | None = None, phone: str | None = None) -> list[Person]:
    site = listed_site(principal, site_id) if principal.role in (Role.owner, Role.tenant) else admin_listing(principal, site_id)
    stmt = select(Person).where(*in_site(Person, site), Person.erased_at.is_(None)).order_by(Person.id)
    if principal.role is Role.owner:
        stmt = stmt.where(Person.id.in_(visible_person_ids_for_owner(session, principal)))
    elif principal.role is Role.tenant:
        stmt = stmt.where(Person.id == principal.person_id)
    if phone is not None:
        stmt = stmt.where(personal.with_phone(session, phone))
    people = list(session.scalars(stmt))
    if principal.role in (Role.site_admin, Role.district_admin, Role.owner):
        # Who listed whom is audited per site (a district admin's listing of every site: one event per site).
        for listed in sorted({p.site_id for p in people} | ({site} if site else set())):  # not NO_SITE
            data: dict[str, object] = {"count": sum(1 for p in people if p.site_id == listed), **({"by_phone": True} if phone is not None else {})}
            events.record(session, principal, "person.listed", entity_type="site", entity_id=listed, site_id=listed, data=data)
    return people


def get_person(session: Session, principal: Principal, person_id: int) -> Person:
    person = load(session, Person, person_id, "person")
    if person.erased_at is not None or not can_see_person(session, principal, person):
        raise not_visible("person", person_id)
    if principal.person_id != person.id:
        events.record(session, principal, "person.viewed", entity_type="person", entity_id=person.id, site_id=person.site_id, person_id=person.id)
    return person


def update_person(session: Session, principal: Principal, person_id: int, body: schemas.PersonPatch) -> Person:
    person = get_person(session, principal, person_id)
    may_edit = principal.administers_site(person.site_id) or (
        principal.role is Role.owner and person.created_by_person_id == principal.person_id
    ) or principal.person_id == person.id
    if not may_edit:
        raise Forbidden("You may view this person but not change them.", code="forbidden_scope")
    patch = body.model_dump(exclude_unset=True)
    _check_registration_fields(session, person.site_id, patch)
    record = personal.read(session, person)
    if patch.get("external_ref") and patch["external_ref"] != record.external_ref and personal.external_ref_taken(session, person.site_id, patch["external_ref"], person.id):
        raise Conflict("A person with this external_ref exists in this site.", code="duplicate_external_ref")
    changed = sorted(name for name, value in patch.items() if getattr(record, name) != value)
    if changed:
        personal.write(session, person, record.model_copy(update=patch))
        # Field names only: the audit trail must not become a second copy of personal data.
        events.record(session, principal, "person.updated", entity_type="person", entity_id=person.id, site_id=person.site_id, person_id=person.id, data={"fields": changed})
    return person


def create_vehicle(session: Session, principal: Principal, body: schemas.VehicleIn) -> Vehicle:
    principal.require_site_admin(body.site_id)
    if body.owner_person_id is not None:
        owner = load(session, Person, body.owner_person_id, "person")
        if owner.site_id != body.site_id:
            raise InvalidInput("The vehicle's owner must be a person of the same site.", code="person_not_in_site")
    if session.scalar(select(Vehicle.id).where(Vehicle.site_id == body.site_id, Vehicle.plate == body.plate)) is not None:
        raise Conflict(f"Plate {body.plate} is registered in this site already.", code="duplicate_plate")
    vehicle = Vehicle(**body.model_dump())
    session.add(vehicle)
    session.flush()
    events.record(session, principal, "vehicle.created", entity_type="vehicle", entity_id=vehicle.id, site_id=vehicle.site_id, person_id=vehicle.owner_person_id, data={"plate": vehicle.plate})
    return vehicle


def list_vehicles(session: Session, principal: Principal, site_id: int | None = None) -> list[Vehicle]:
    site = admin_listing(principal, site_id)
    return list(session.scalars(select(Vehicle).where(*in_site(Vehicle, site)).order_by(Vehicle.id)))


def get_vehicle(session: Session, principal: Principal, vehicle_id: int) -> Vehicle:
    vehicle = load(session, Vehicle, vehicle_id, "vehicle")
    if not (principal.administers_site(vehicle.site_id) or (principal.person_id is not None and principal.person_id == vehicle.owner_person_id and principal.role is not Role.device)):
        raise not_visible("vehicle", vehicle_id)
    return vehicle


def find_vehicle_by_plate(session: Session, site_id: int, plate: str) -> Vehicle:
    vehicle = session.scalar(select(Vehicle).where(Vehicle.site_id == site_id, Vehicle.plate == plate))
    if vehicle is None:
        raise NotFound(f"Plate {plate} is not registered in this site.", code="vehicle_not_found")
    return vehicle
