"""Site staff's actions beyond the screen: the people of a site with revoke, suspend and reinstate;
the same verbs for a door's devices; a pass inspected layer by layer. Each calls the revocation or
pass service the API calls, so the rules (own site only, allowed transitions, audit) are theirs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response

from idsvc.auth.deps import Ctx
from idsvc.auth.models import Role
from idsvc.console.session import ConsoleSession, check_csrf, current
from idsvc.console.web import ConsoleRoute, redirect, render, safe_next
from idsvc.core.db import utcnow
from idsvc.core.validation import RowId
from idsvc.passes import inspect
from idsvc.passes.api import get_verifier
from idsvc.registry import people, personal
from idsvc.revocation import service as revocation
from idsvc.revocation.service import Verb

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[ConsoleSession, Depends(current)]
Csrf = Annotated[str, Form(max_length=100)]
Reason = Annotated[str, Form(min_length=1, max_length=500)]
Next = Annotated[str, Form(max_length=500)]
PAGE = 200


@router.get("/console/people")
def people_page(request: Request, ctx: Ctx, signed: Signed, site_id: Annotated[RowId | None, Query()] = None, page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    """The site's people (listing them is audited per site, as through the API), a page at a time."""
    signed.principal.require_role(Role.district_admin, Role.site_admin)
    with ctx.db.session() as s:
        listed = people.list_people(s, signed.principal, site_id)
        shown = [(p, personal.read(s, p).display_name) for p in listed[(page - 1) * PAGE : page * PAGE]]
        return render(request, "people.html", signed, people=shown, page=page, more=len(listed) > page * PAGE, site_id=site_id, verbs=[v.value for v in Verb])


@router.post("/console/people/{person_id}/{verb}")
def change_person(ctx: Ctx, signed: Signed, person_id: RowId, verb: Verb, csrf: Csrf, reason: Reason, next: Next = "/console/people") -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        revocation.change_person(s, signed.principal, person_id, verb, reason)
    return redirect(safe_next(next))


@router.post("/console/devices/{device_id}/{verb}")
def change_device(ctx: Ctx, signed: Signed, device_id: RowId, verb: Verb, csrf: Csrf, reason: Reason, next: Next = "/console/") -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        revocation.change_device(s, signed.principal, device_id, verb, reason)
    return redirect(safe_next(next))


@router.get("/console/passes/inspect")
def inspect_form(request: Request, signed: Signed) -> Response:
    signed.principal.require_role(Role.district_admin, Role.site_admin)
    return render(request, "inspect.html", signed, report=None, text="")


@router.post("/console/passes/inspect")
def inspect_pass(request: Request, ctx: Ctx, signed: Signed, csrf: Csrf, text: Annotated[str, Form(min_length=1, max_length=4000)]) -> Response:
    """The layers of a QR (as ``idsvc pass inspect --service-keys``): this service's keys and records."""
    check_csrf(signed.csrf, csrf)
    signed.principal.require_role(Role.district_admin, Role.site_admin)
    with ctx.db.session() as s:
        signers = inspect.service_signers(s)
    report = inspect.inspect(text.strip(), signers=signers, standing=get_verifier(request).standing, at=utcnow())
    return render(request, "inspect.html", signed, report=report.to_dict(), text=text.strip())
