"""Who may see which registry rows. Services call these; views never decide access themselves.

A caller who may not see a row gets 404, the same as for a row that does not exist, so an owner
cannot probe for another owner's units or tenants.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.db import Base, utcnow
from idsvc.core.errors import NotFound
from idsvc.registry.models import DoorGroup, Grant, Person, Status, Unit

T = TypeVar("T", bound=Base)


def load(session: Session, model: type[T], row_id: int, what: str) -> T:
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"{what.replace('_', ' ').capitalize()} {row_id} does not exist.", code=f"{what}_not_found")
    return row


def not_visible(what: str, row_id: int) -> NotFound:
    return NotFound(f"{what.replace('_', ' ').capitalize()} {row_id} does not exist.", code=f"{what}_not_found")


def owned_unit_ids(session: Session, principal: Principal) -> list[int]:
    if principal.role is not Role.owner or principal.person_id is None:
        return []
    return list(session.scalars(select(Unit.id).where(Unit.owner_id == principal.person_id)))


def unit_door_group_id(session: Session, unit_id: int) -> int | None:
    return session.scalar(select(DoorGroup.id).where(DoorGroup.unit_id == unit_id))


def tenant_unit_ids(session: Session, person_id: int) -> list[int]:
    """Units the person rents now (or will): a tenant taken off a unit, or whose tenancy ran out, no longer sees it."""
    return list(
        session.scalars(
            select(Grant.unit_id)
            .where(Grant.person_id == person_id, Grant.unit_id.is_not(None), Grant.status != Status.revoked, Grant.valid_until > utcnow())
            .distinct()
        )
    )


def visible_person_ids_for_owner(session: Session, principal: Principal) -> set[int]:
    """The owner themself, people they registered, and anyone holding a grant on one of their units."""
    units = owned_unit_ids(session, principal)
    ids = {principal.person_id} if principal.person_id is not None else set()
    ids.update(session.scalars(select(Person.id).where(Person.created_by_person_id == principal.person_id)))
    if units:
        ids.update(session.scalars(select(Grant.person_id).where(Grant.unit_id.in_(units), Grant.person_id.is_not(None))))
    return ids  # type: ignore[return-value]


def can_see_person(session: Session, principal: Principal, person: Person) -> bool:
    if person.erased_at is not None:
        return False  # an erased person's tombstone is there for the bridges only: gone for everyone
    if principal.administers_site(person.site_id):
        return True
    if principal.role is Role.owner:
        return person.id in visible_person_ids_for_owner(session, principal)
    return principal.role is Role.tenant and principal.person_id == person.id


def can_manage_unit(principal: Principal, unit: Unit) -> bool:
    """Site admins, and the unit's own owner: they authorise and remove tenants."""
    return principal.administers_site(unit.site_id) or (principal.role is Role.owner and unit.owner_id == principal.person_id)


def can_see_unit(session: Session, principal: Principal, unit: Unit) -> bool:
    if can_manage_unit(principal, unit):
        return True
    return principal.role is Role.tenant and principal.person_id is not None and unit.id in tenant_unit_ids(session, principal.person_id)


def listed_site(principal: Principal, site_id: int | None) -> int | None:
    """The site a listing covers: the one asked for, else the key's own site (a site admin's, an
    owner's, a tenant's). None means every site, and only a district admin's key covers them all."""
    if site_id is not None or principal.is_district_admin:
        return site_id
    return principal.site_id


# No row has id 0: a listing narrowed to it is empty.
NO_SITE = 0


def admin_listing(principal: Principal, site_id: int | None) -> int | None:
    """:func:`listed_site` for what only admins may list; refuses every other role (default deny).
    A site admin naming another site gets an empty list, as for a site that does not exist."""
    site = listed_site(principal, site_id)
    if site is None:
        principal.require_district_admin()
        return None
    principal.require_role(Role.district_admin, Role.site_admin)
    return site if principal.administers_site(site) else NO_SITE


def in_site(model: Any, site: int | None) -> tuple[Any, ...]:
    """The WHERE clause of a listing of ``site`` (none for every site)."""
    return () if site is None else (model.site_id == site,)


def member_of_site(principal: Principal, site_id: int) -> bool:
    """People of a site may read its basic shape (site, buildings); devices use the device API only."""
    return principal.is_district_admin or (principal.role is not Role.device and principal.site_id == site_id)
