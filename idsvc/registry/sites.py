"""Sites and buildings."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.errors import Conflict
from idsvc.registry import events, schemas
from idsvc.registry.models import Building, Site
from idsvc.registry.scope import listed_site, load, member_of_site, not_visible


def create_site(session: Session, principal: Principal, body: schemas.SiteIn) -> Site:
    principal.require_district_admin()
    if session.scalar(select(Site.id).where(Site.code == body.code)) is not None:
        raise Conflict(f"A site with code '{body.code}' exists already.", code="duplicate_code")
    site = Site(code=body.code, name=body.name, timezone=body.timezone, settings=body.settings)
    session.add(site)
    session.flush()
    events.record(session, principal, "site.created", entity_type="site", entity_id=site.id, site_id=site.id, data=body.model_dump())
    return site


def list_sites(session: Session, principal: Principal) -> list[Site]:
    principal.require_role(Role.district_admin, Role.site_admin, Role.owner, Role.tenant)  # devices: device API only
    stmt = select(Site).order_by(Site.id)
    if not principal.is_district_admin:
        stmt = stmt.where(Site.id == principal.site_id)
    return list(session.scalars(stmt))


def get_site(session: Session, principal: Principal, site_id: int) -> Site:
    site = load(session, Site, site_id, "site")
    if not member_of_site(principal, site.id):
        raise not_visible("site", site_id)
    return site


def update_site(session: Session, principal: Principal, site_id: int, body: schemas.SitePatch) -> Site:
    site = get_site(session, principal, site_id)
    principal.require_site_admin(site.id)
    changed = events.changes(site, body.model_dump(exclude_unset=True, exclude_none=True))
    if changed:
        events.record(session, principal, "site.updated", entity_type="site", entity_id=site.id, site_id=site.id, data=changed)
    return site


def create_building(session: Session, principal: Principal, body: schemas.BuildingIn) -> Building:
    site = get_site(session, principal, body.site_id)
    principal.require_site_admin(site.id)
    if session.scalar(select(Building.id).where(Building.site_id == site.id, Building.code == body.code)) is not None:
        raise Conflict(f"Building code '{body.code}' is taken in this site.", code="duplicate_code")
    building = Building(site_id=site.id, code=body.code, name=body.name)
    session.add(building)
    session.flush()
    events.record(session, principal, "building.created", entity_type="building", entity_id=building.id, site_id=site.id, data=body.model_dump())
    return building


def list_buildings(session: Session, principal: Principal, site_id: int | None = None) -> list[Building]:
    listed = listed_site(principal, site_id)
    if listed is None:
        principal.require_district_admin()  # every site's buildings
        return list(session.scalars(select(Building).order_by(Building.id)))
    site = get_site(session, principal, listed)
    return list(session.scalars(select(Building).where(Building.site_id == site.id).order_by(Building.id)))


def get_building(session: Session, principal: Principal, building_id: int) -> Building:
    building = load(session, Building, building_id, "building")
    if not member_of_site(principal, building.site_id):
        raise not_visible("building", building_id)
    return building
