"""Site staff register what a site is made of: buildings, units, doors, devices and people. Each form
goes through the API's own schema and registry function, so the rules and the audit are the API's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from idsvc.auth.deps import Ctx
from idsvc.console import screen
from idsvc.console.session import ConsoleSession, check_csrf, current
from idsvc.console.web import ConsoleRoute, redirect, render, validated
from idsvc.core.errors import InvalidInput
from idsvc.core.validation import RowId
from idsvc.registry import doors, people, schemas, sites, units
from idsvc.registry.api import DoorCtx
from idsvc.registry.models import DeviceKind, DoorKind, PersonKind, UnitKind

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[ConsoleSession, Depends(current)]
Csrf = Annotated[str, Form(max_length=100)]
Text = Annotated[str, Form(max_length=200)]
OptionalId = Annotated[str, Form(max_length=12)]


def _optional_id(value: str, field: str) -> int | None:
    """A select left at "none" is empty; anything else must be a row id."""
    if not value.strip():
        return None
    if not value.strip().isdigit():
        raise InvalidInput(f"{field} must be chosen from the list.", code="invalid_input")
    return int(value)


def _back(site_id: int) -> Response:
    return redirect(f"/console/sites/{site_id}/manage")


@router.get("/console/sites/{site_id}/manage")
def manage_page(request: Request, ctx: Ctx, signed: Signed, site_id: RowId) -> Response:
    with ctx.db.session() as s:
        site = screen.screen_site(s, signed.principal, site_id)
        return render(
            request, "manage.html", signed, timezone=site.timezone, site=site,
            buildings=sites.list_buildings(s, signed.principal, site.id),
            units=units.list_units(s, signed.principal, site.id),
            doors=doors.list_doors(s, signed.principal, site.id),
            devices=doors.list_devices(s, signed.principal, site.id),
            unit_kinds=[k.value for k in UnitKind], door_kinds=[k.value for k in DoorKind], device_kinds=[k.value for k in DeviceKind],
            person_kinds=[k.value for k in PersonKind],
        )


@router.post("/console/sites/{site_id}/buildings")
def add_building(ctx: Ctx, signed: Signed, site_id: RowId, csrf: Csrf, code: Text, name: Text) -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        sites.create_building(s, signed.principal, validated(schemas.BuildingIn, site_id=site_id, code=code, name=name))
    return _back(site_id)


@router.post("/console/sites/{site_id}/units")
def add_unit(ctx: Ctx, signed: Signed, site_id: RowId, csrf: Csrf, building_id: OptionalId, label: Text, kind: Text, owner_id: OptionalId = "") -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        body = validated(schemas.UnitIn, building_id=_optional_id(building_id, "building"), label=label, kind=kind, owner_id=_optional_id(owner_id, "owner"))
        units.register_unit(s, signed.principal, body)
    return _back(site_id)


@router.post("/console/sites/{site_id}/doors")
def add_door(
    ctx: Ctx, signed: Signed, site_id: RowId, csrf: Csrf, code: Text, name: Text, kind: Text, building_id: OptionalId = "", unit_id: OptionalId = "",
) -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        body = validated(schemas.DoorIn, site_id=site_id, code=code, name=name, kind=kind, building_id=_optional_id(building_id, "building"),
                         unit_id=_optional_id(unit_id, "unit"))
        doors.create_door(s, signed.principal, body)  # face_mode stays face_and_pass: face_only is set through the API, with its check
    return _back(site_id)


@router.post("/console/sites/{site_id}/devices")
def add_device(ctx: Ctx, signed: Signed, site_id: RowId, csrf: Csrf, code: Text, name: Text, kind: Text, door_ids: Annotated[list[int] | None, Form()] = None) -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        doors.create_device(s, signed.principal, validated(schemas.DeviceIn, site_id=site_id, code=code, name=name, kind=kind, door_ids=door_ids or []))
    return _back(site_id)


@router.post("/console/doors/{door_id}")
def edit_door(ctx: DoorCtx, signed: Signed, door_id: RowId, csrf: Csrf, name: Text, face_mode: Text) -> Response:
    """A door's name and face policy; face_only goes through the faces domain's check, as through the API."""
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        doors.update_door(s, signed.principal, door_id, validated(schemas.DoorPatch, name=name, face_mode=face_mode), face_only_check=ctx.face_only_check)
    return redirect(f"/console/doors/{door_id}")


@router.post("/console/sites/{site_id}/people")
def add_person(ctx: Ctx, signed: Signed, site_id: RowId, csrf: Csrf, display_name: Text, kind: Text, phone: Annotated[str, Form(max_length=40)] = "") -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        people.create_person(s, signed.principal, validated(schemas.PersonIn, site_id=site_id, display_name=display_name, kind=kind, phone=phone or None))
    return redirect("/console/people")
