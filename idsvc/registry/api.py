"""HTTP views of the registry. Thin: parse, call the service (which checks role and scope), shape."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Request, Response, status

from idsvc.auth.deps import AuthContext, Caller, Ctx, get_context
from idsvc.core.db import utcnow
from idsvc.core.errors import InvalidInput
from idsvc.core.validation import Phone, Reason, RowId
from idsvc.registry import access, doors, grants, people, schemas, sites, statistics, tenancies, units
from idsvc.registry.models import Status

router = APIRouter(prefix="/v1", tags=["registry"])
CREATED = {"status_code": status.HTTP_201_CREATED}
SiteQuery = Query(description="The site to list; default: the key's own site (every site for a district admin).")


class DoorConfigContext(AuthContext, Protocol):
    """Configuring a door's face_mode needs the faces domain's check, which the app wiring provides."""

    @property
    def face_only_check(self) -> doors.FaceOnlyCheck: ...


DoorCtx = Annotated[DoorConfigContext, Depends(get_context)]


# --- statistics for district platforms -----------------------------------------------------------


@router.get("/statistics", responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}})
def district_statistics(
    request: Request,
    ctx: Ctx,
    caller: Caller,
    site_id: RowId | None = None,
    first: Annotated[date | None, Query(alias="from", description="First day (site's time zone); default: 6 days before 'to'.")] = None,
    last: Annotated[date | None, Query(alias="to", description="Last day (included); default: today in Asia/Shanghai.")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Per site and building: units, occupied units, residents, arrivals, departures, registrations
    overdue, residents by province of household registration (where collected). People counts of 1-4
    are ``"<5"``, and a further cell ``"x"`` where a ``"<5"`` could be worked out by subtraction. Paged; the ``ETag`` changes only when the figures do (docs/console.md)."""
    first, last = statistics.days(first, last)
    with ctx.db.session() as s:
        rows = statistics.figures(s, caller, first, last, utcnow(), site_id)
    items = rows[(page - 1) * page_size : page * page_size]
    body = {"from": first.isoformat(), "to": last.isoformat(), "page": page, "page_size": page_size, "total": len(rows),
            "next_page": page + 1 if page * page_size < len(rows) else None, "items": items}
    encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(encoded, media_type="application/json", headers=headers)


# --- sites and buildings -------------------------------------------------------------------------
@router.post("/sites", **CREATED)
def create_site(body: schemas.SiteIn, ctx: Ctx, caller: Caller) -> schemas.SiteOut:
    with ctx.db.session() as s:
        return schemas.SiteOut.model_validate(sites.create_site(s, caller, body))


@router.get("/sites")
def list_sites(ctx: Ctx, caller: Caller) -> list[schemas.SiteOut]:
    with ctx.db.session() as s:
        return [schemas.SiteOut.model_validate(x) for x in sites.list_sites(s, caller)]


@router.get("/sites/{site_id}")
def get_site(site_id: RowId, ctx: Ctx, caller: Caller) -> schemas.SiteOut:
    with ctx.db.session() as s:
        return schemas.SiteOut.model_validate(sites.get_site(s, caller, site_id))


@router.patch("/sites/{site_id}")
def update_site(site_id: RowId, body: schemas.SitePatch, ctx: Ctx, caller: Caller) -> schemas.SiteOut:
    with ctx.db.session() as s:
        return schemas.SiteOut.model_validate(sites.update_site(s, caller, site_id, body))


@router.get("/sites/{site_id}/tenancies/daily")
def tenancies_per_day(
    site_id: RowId, ctx: Ctx, caller: Caller, first: Annotated[date, Query(alias="from", description="First day, in the site's time zone.")],
    last: Annotated[date, Query(alias="to", description="Last day (included); at most 366 days after 'from'.")],
) -> list[dict[str, Any]]:
    """Arrivals and departures of tenants per day (police registration of rental housing)."""
    if not 0 <= (last - first).days < tenancies.MAX_DAYS:
        raise InvalidInput(f"'to' must be on or after 'from', at most {tenancies.MAX_DAYS} days in all.", code="invalid_date_range")
    with ctx.db.session() as s:
        site = sites.get_site(s, caller, site_id)
        caller.require_site_admin(site.id)
        return [d.__dict__ for d in tenancies.daily(s, site, first, last)]


@router.get("/sites/{site_id}/registrations/overdue")
def registrations_overdue(site_id: RowId, ctx: Ctx, caller: Caller) -> list[dict[str, Any]]:
    """Tenants who arrived more than the site's registration.deadline_days ago with fields still missing."""
    with ctx.db.session() as s:
        site = sites.get_site(s, caller, site_id)
        caller.require_site_admin(site.id)
        return [o.__dict__ for o in tenancies.registration_overdue(s, site, utcnow())]


@router.post("/buildings", **CREATED)
def create_building(body: schemas.BuildingIn, ctx: Ctx, caller: Caller) -> schemas.BuildingOut:
    with ctx.db.session() as s:
        return schemas.BuildingOut.model_validate(sites.create_building(s, caller, body))


@router.get("/buildings")
def list_buildings(ctx: Ctx, caller: Caller, site_id: Annotated[RowId | None, SiteQuery] = None) -> list[schemas.BuildingOut]:
    with ctx.db.session() as s:
        return [schemas.BuildingOut.model_validate(x) for x in sites.list_buildings(s, caller, site_id)]


@router.get("/buildings/{building_id}")
def get_building(building_id: RowId, ctx: Ctx, caller: Caller) -> schemas.BuildingOut:
    with ctx.db.session() as s:
        return schemas.BuildingOut.model_validate(sites.get_building(s, caller, building_id))


# --- units and tenancies -------------------------------------------------------------------------
@router.post("/units", **CREATED)
def register_unit(body: schemas.UnitIn, ctx: Ctx, caller: Caller) -> schemas.UnitOut:
    with ctx.db.session() as s:
        return schemas.UnitOut.of(s, units.register_unit(s, caller, body))


@router.get("/units")
def list_units(ctx: Ctx, caller: Caller, site_id: RowId | None = None, building_id: RowId | None = None) -> list[schemas.UnitOut]:
    with ctx.db.session() as s:
        return [schemas.UnitOut.of(s, u) for u in units.list_units(s, caller, site_id, building_id)]


@router.get("/units/{unit_id}")
def get_unit(unit_id: RowId, ctx: Ctx, caller: Caller) -> schemas.UnitOut:
    with ctx.db.session() as s:
        return schemas.UnitOut.of(s, units.get_unit(s, caller, unit_id))


@router.patch("/units/{unit_id}")
def update_unit(unit_id: RowId, body: schemas.UnitPatch, ctx: Ctx, caller: Caller) -> schemas.UnitOut:
    with ctx.db.session() as s:
        return schemas.UnitOut.of(s, units.update_unit(s, caller, unit_id, body))


@router.post("/units/{unit_id}/tenants", **CREATED)
def add_tenant(unit_id: RowId, body: schemas.TenancyIn, ctx: Ctx, caller: Caller) -> schemas.GrantOut:
    with ctx.db.session() as s:
        return schemas.GrantOut.model_validate(units.add_tenant(s, caller, unit_id, body))


@router.get("/units/{unit_id}/tenants")
def list_tenants(unit_id: RowId, ctx: Ctx, caller: Caller, include_ended: bool = False) -> list[schemas.GrantOut]:
    with ctx.db.session() as s:
        return [schemas.GrantOut.model_validate(g) for g in units.list_tenancies(s, caller, unit_id, include_ended)]


@router.delete("/units/{unit_id}/tenants/{person_id}")
def end_tenancy(
    unit_id: RowId, person_id: RowId, ctx: Ctx, caller: Caller, reason: Annotated[Reason, Query()] = "tenancy ended"
) -> list[schemas.GrantOut]:
    with ctx.db.session() as s:
        return [schemas.GrantOut.model_validate(g) for g in units.end_tenancy(s, caller, unit_id, person_id, reason)]


# --- doors, door groups, devices -----------------------------------------------------------------
@router.post("/doors", **CREATED)
def create_door(body: schemas.DoorIn, ctx: DoorCtx, caller: Caller) -> schemas.DoorOut:
    with ctx.db.session() as s:
        return schemas.DoorOut.model_validate(doors.create_door(s, caller, body, face_only_check=ctx.face_only_check))


@router.get("/doors")
def list_doors(ctx: Ctx, caller: Caller, site_id: Annotated[RowId | None, SiteQuery] = None) -> list[schemas.DoorOut]:
    with ctx.db.session() as s:
        return [schemas.DoorOut.model_validate(d) for d in doors.list_doors(s, caller, site_id)]


@router.get("/doors/{door_id}")
def get_door(door_id: RowId, ctx: Ctx, caller: Caller) -> schemas.DoorOut:
    with ctx.db.session() as s:
        return schemas.DoorOut.model_validate(doors.get_door(s, caller, door_id))


@router.patch("/doors/{door_id}")
def update_door(door_id: RowId, body: schemas.DoorPatch, ctx: DoorCtx, caller: Caller) -> schemas.DoorOut:
    with ctx.db.session() as s:
        return schemas.DoorOut.model_validate(doors.update_door(s, caller, door_id, body, face_only_check=ctx.face_only_check))


@router.post("/door-groups", **CREATED)
def create_door_group(body: schemas.DoorGroupIn, ctx: Ctx, caller: Caller) -> schemas.DoorGroupOut:
    with ctx.db.session() as s:
        return schemas.DoorGroupOut.of(doors.create_door_group(s, caller, body))


@router.get("/door-groups")
def list_door_groups(ctx: Ctx, caller: Caller, site_id: Annotated[RowId | None, SiteQuery] = None) -> list[schemas.DoorGroupOut]:
    with ctx.db.session() as s:
        return [schemas.DoorGroupOut.of(g) for g in doors.list_door_groups(s, caller, site_id)]


@router.get("/door-groups/{group_id}")
def get_door_group(group_id: RowId, ctx: Ctx, caller: Caller) -> schemas.DoorGroupOut:
    with ctx.db.session() as s:
        return schemas.DoorGroupOut.of(doors.get_door_group(s, caller, group_id))


@router.put("/door-groups/{group_id}/doors")
def set_door_group_doors(group_id: RowId, body: schemas.DoorGroupDoors, ctx: Ctx, caller: Caller) -> schemas.DoorGroupOut:
    with ctx.db.session() as s:
        return schemas.DoorGroupOut.of(doors.set_door_group_doors(s, caller, group_id, body.door_ids))


@router.post("/devices", **CREATED)
def create_device(body: schemas.DeviceIn, ctx: Ctx, caller: Caller) -> schemas.DeviceOut:
    with ctx.db.session() as s:
        return schemas.DeviceOut.of(doors.create_device(s, caller, body))


@router.get("/devices")
def list_devices(ctx: Ctx, caller: Caller, site_id: Annotated[RowId | None, SiteQuery] = None) -> list[schemas.DeviceOut]:
    with ctx.db.session() as s:
        return [schemas.DeviceOut.of(d) for d in doors.list_devices(s, caller, site_id)]


@router.get("/devices/{device_id}")
def get_device(device_id: RowId, ctx: Ctx, caller: Caller) -> schemas.DeviceOut:
    with ctx.db.session() as s:
        return schemas.DeviceOut.of(doors.get_device(s, caller, device_id))


@router.patch("/devices/{device_id}")
def update_device(device_id: RowId, body: schemas.DevicePatch, ctx: Ctx, caller: Caller) -> schemas.DeviceOut:
    with ctx.db.session() as s:
        return schemas.DeviceOut.of(doors.update_device(s, caller, device_id, body))


# --- people and vehicles -------------------------------------------------------------------------
@router.post("/people", **CREATED)
def create_person(body: schemas.PersonIn, ctx: Ctx, caller: Caller) -> schemas.PersonOut:
    with ctx.db.session() as s:
        return schemas.PersonOut.of(s, people.create_person(s, caller, body))


@router.get("/people")
def list_people(
    ctx: Ctx, caller: Caller, site_id: Annotated[RowId | None, SiteQuery] = None,
    phone: Annotated[Phone | None, Query(description="Only people with this phone number (blind-index lookup).")] = None,
) -> list[schemas.PersonOut]:
    with ctx.db.session() as s:
        return [schemas.PersonOut.of(s, p) for p in people.list_people(s, caller, site_id, phone)]


@router.get("/people/{person_id}")
def get_person(person_id: RowId, ctx: Ctx, caller: Caller) -> schemas.PersonOut:
    with ctx.db.session() as s:
        return schemas.PersonOut.of(s, people.get_person(s, caller, person_id))


@router.patch("/people/{person_id}")
def update_person(person_id: RowId, body: schemas.PersonPatch, ctx: Ctx, caller: Caller) -> schemas.PersonOut:
    with ctx.db.session() as s:
        return schemas.PersonOut.of(s, people.update_person(s, caller, person_id, body))


@router.post("/vehicles", **CREATED)
def create_vehicle(body: schemas.VehicleIn, ctx: Ctx, caller: Caller) -> schemas.VehicleOut:
    with ctx.db.session() as s:
        return schemas.VehicleOut.model_validate(people.create_vehicle(s, caller, body))


@router.get("/vehicles")
def list_vehicles(ctx: Ctx, caller: Caller, site_id: Annotated[RowId | None, SiteQuery] = None) -> list[schemas.VehicleOut]:
    with ctx.db.session() as s:
        return [schemas.VehicleOut.model_validate(v) for v in people.list_vehicles(s, caller, site_id)]


@router.get("/vehicles/{vehicle_id}")
def get_vehicle(vehicle_id: RowId, ctx: Ctx, caller: Caller) -> schemas.VehicleOut:
    with ctx.db.session() as s:
        return schemas.VehicleOut.model_validate(people.get_vehicle(s, caller, vehicle_id))


# --- grants and the access check -----------------------------------------------------------------
@router.post("/grants", **CREATED)
def create_grant(body: schemas.GrantIn, ctx: Ctx, caller: Caller) -> schemas.GrantOut:
    with ctx.db.session() as s:
        return schemas.GrantOut.model_validate(grants.create_grant(s, caller, body))


@router.get("/grants")
def list_grants(
    ctx: Ctx,
    caller: Caller,
    site_id: RowId | None = None,
    person_id: RowId | None = None,
    vehicle_id: RowId | None = None,
    unit_id: RowId | None = None,
    status: Status | None = None,
) -> list[schemas.GrantOut]:
    with ctx.db.session() as s:
        found = grants.list_grants(s, caller, site_id=site_id, person_id=person_id, vehicle_id=vehicle_id, unit_id=unit_id, status=status)
        return [schemas.GrantOut.model_validate(g) for g in found]


@router.get("/grants/{grant_id}")
def get_grant(grant_id: RowId, ctx: Ctx, caller: Caller) -> schemas.GrantOut:
    with ctx.db.session() as s:
        return schemas.GrantOut.model_validate(grants.get_grant(s, caller, grant_id))


def _status_route(verb: str) -> None:
    def change(grant_id: RowId, body: schemas.StatusChange, ctx: Ctx, caller: Caller) -> schemas.GrantOut:
        with ctx.db.session() as s:
            return schemas.GrantOut.model_validate(grants.change_status(s, caller, grant_id, verb, body.reason))

    router.add_api_route(f"/grants/{{grant_id}}/{verb}", change, methods=["POST"], name=f"{verb}_grant", summary=f"{verb.capitalize()} a grant")


for _verb in ("suspend", "reinstate", "revoke"):
    _status_route(_verb)


@router.post("/access/check")
def check_access(body: schemas.AccessCheckIn, ctx: Ctx, caller: Caller) -> schemas.AccessCheckOut:
    """What the decision engine's authorise step would say (a dry run: no use is counted)."""
    at = body.at or utcnow()
    with ctx.db.session() as s:
        door = doors.get_door(s, caller, body.door_id)
        result = access.check_access_as(caller, s, door.id, at, person_id=body.person_id, vehicle_id=body.vehicle_id, plate=body.plate)
        return schemas.AccessCheckOut(allowed=result.allowed, reasons=list(result.reasons), grant_id=result.grant_id, at=at)
