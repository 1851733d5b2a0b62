"""The landlord's pages (phone layout): a unit's tenants and passes, add and authorise a tenant in two
steps, end a tenancy, the pass QR and the unit's printable "one house, one code" sheet.

Admins use the same pages for any unit of their site; every action is the registry's or the pass
service's own function, so the unit rules (only its owner or the site's admins) are theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from idsvc.auth.deps import Ctx
from idsvc.auth.principal import Principal
from idsvc.console import screen
from idsvc.console.session import ConsoleSession, check_csrf, current
from idsvc.console.web import ConsoleRoute, redirect, render, validated
from idsvc.core.validation import RowId
from idsvc.passes import issuing, qr
from idsvc.passes.api import get_verifier
from idsvc.passes.models import Pass
from idsvc.registry import people, personal, schemas, units
from idsvc.registry.models import Grant, PersonKind, Site, Status, Unit
from idsvc.registry.site_settings import parse

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[ConsoleSession, Depends(current)]
Csrf = Annotated[str, Form(max_length=100)]


@dataclass
class TenantView:
    person_id: int
    name: str
    grant: Grant
    passes: list[Pass]


def _tenants(session: Session, caller: Principal, unit: Unit) -> list[TenantView]:
    views = []
    for grant in units.list_tenancies(session, caller, unit.id):
        person = people.get_person(session, caller, grant.person_id or 0)  # audited as a read, as through the API
        passes = [p for p in issuing.list_for_person(session, caller, person.id) if p.status is not Status.revoked]
        views.append(TenantView(person.id, personal.read(session, person).display_name, grant, passes))
    return views


def _site_day(site: Site, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(site.timezone))


@router.get("/console/units/{unit_id}")
def unit_page(request: Request, ctx: Ctx, signed: Signed, unit_id: RowId, person: int | None = None) -> Response:
    with ctx.db.session() as s:
        unit = units.get_unit(s, signed.principal, unit_id)
        tenants = _tenants(s, signed.principal, unit)
        site = s.get(Site, unit.site_id)
        assert site is not None
        today = datetime.now(ZoneInfo(site.timezone)).date()
        return render(
            request, "unit.html", signed, timezone=site.timezone, unit=unit, tenants=tenants, new_person=person, entries=screen.unit_entries(s, unit),
            today=today.isoformat(), until=(today + timedelta(days=180)).isoformat(), collected=parse(site.settings).registration.fields,
            provinces=personal.PROVINCES,
        )


class RegistrationForm(BaseModel):
    """The registration fields as the form sends them: empty means not given (the site may not collect it)."""

    sex: str = ""
    birth_date: str = ""
    household_province: str = ""
    household_address: str = Field("", max_length=200)
    occupation: str = Field("", max_length=200)
    workplace: str = Field("", max_length=200)


@router.post("/console/units/{unit_id}/people")
def register_tenant(
    ctx: Ctx, signed: Signed, unit_id: RowId, csrf: Csrf, display_name: Annotated[str, Form(min_length=1, max_length=200)],
    registration: Annotated[RegistrationForm, Form()], phone: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Step 1: register the person (a tenant of the unit's site) with the registration fields the site
    collects; step 2 on the same page authorises them."""
    check_csrf(signed.csrf, csrf)
    given = {name: value.strip() for name, value in registration.model_dump().items() if value.strip()}
    with ctx.db.session() as s:
        unit = units.get_unit(s, signed.principal, unit_id)
        body = validated(schemas.PersonIn, site_id=unit.site_id, display_name=display_name, kind=PersonKind.tenant, phone=phone or None, **given)
        person = people.create_person(s, signed.principal, body)
        return redirect(f"/console/units/{unit.id}?person={person.id}#authorise")


@router.post("/console/units/{unit_id}/tenants")
def authorise_tenant(ctx: Ctx, signed: Signed, unit_id: RowId, csrf: Csrf, person_id: Annotated[int, Form(ge=1)], valid_from: Annotated[date, Form()], valid_until: Annotated[date, Form()]) -> Response:
    """Step 2: the tenant may pass the unit's doors from the first day (00:00 in the site's zone) to the end of the last."""
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        unit = units.get_unit(s, signed.principal, unit_id)
        site = s.get(Site, unit.site_id)
        assert site is not None
        now = datetime.now(ZoneInfo(site.timezone))
        start = now if valid_from <= now.date() else _site_day(site, valid_from)  # from today: from now
        body = validated(schemas.TenancyIn, person_id=person_id, valid_from=start, valid_until=_site_day(site, valid_until + timedelta(days=1)))
        units.add_tenant(s, signed.principal, unit.id, body)
        return redirect(f"/console/units/{unit.id}")


@router.post("/console/units/{unit_id}/tenants/{person_id}/end")
def end_tenancy(ctx: Ctx, signed: Signed, unit_id: RowId, person_id: RowId, csrf: Csrf, reason: Annotated[str, Form(min_length=1, max_length=500)]) -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        units.end_tenancy(s, signed.principal, unit_id, person_id, reason)
    return redirect(f"/console/units/{unit_id}")


@router.post("/console/people/{person_id}/passes")
def issue_pass(ctx: Ctx, signed: Signed, person_id: RowId, csrf: Csrf, unit_id: Annotated[int, Form(ge=1)]) -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        issuing.issue(s, ctx.sealer, signed.principal, person_id)
    return redirect(f"/console/units/{unit_id}")


@router.post("/console/passes/{pass_id}/revoke")
def revoke_pass(request: Request, ctx: Ctx, signed: Signed, pass_id: RowId, csrf: Csrf, reason: Annotated[str, Form(min_length=1, max_length=500)], unit_id: Annotated[int, Form(ge=1)]) -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        issuing.change_status(s, signed.principal, pass_id, Status.revoked, reason)
    get_verifier(request).invalidate()  # this node forgets at once, as after the API's revoke; other nodes on the notice
    return redirect(f"/console/units/{unit_id}")


@router.get("/console/passes/{pass_id}/qr.svg")
def pass_qr(ctx: Ctx, signed: Signed, pass_id: RowId) -> Response:
    with ctx.db.session() as s:
        text = issuing.qr_text(s, ctx.sealer, issuing.get_pass(s, signed.principal, pass_id))
    return Response(qr.render_svg(text), media_type="image/svg+xml")


@router.get("/console/units/{unit_id}/qr.svg")
def unit_qr(ctx: Ctx, signed: Signed, unit_id: RowId) -> Response:
    with ctx.db.session() as s:
        unit = units.get_unit(s, signed.principal, unit_id)
        return Response(qr.render_svg(qr.unit_code_text(unit.code)), media_type="image/svg+xml")


@router.get("/console/units/{unit_id}/sheet")
def unit_sheet(request: Request, ctx: Ctx, signed: Signed, unit_id: RowId) -> Response:
    """"One house, one code": the unit's code and its tenants' passes on one printable page."""
    with ctx.db.session() as s:
        unit = units.get_unit(s, signed.principal, unit_id)
        site = s.get(Site, unit.site_id)
        return render(request, "sheet.html", signed, timezone=site.timezone if site else "Asia/Shanghai", unit=unit, site=site, tenants=_tenants(s, signed.principal, unit))
