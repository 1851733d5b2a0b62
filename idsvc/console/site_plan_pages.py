"""The site plan editor: upload a plan image and place doors on it by clicking (site admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from idsvc.auth.deps import Ctx
from idsvc.console import screen
from idsvc.console.session import ConsoleSession, check_csrf, current
from idsvc.console.web import ConsoleRoute, redirect, render
from idsvc.core.errors import InvalidInput
from idsvc.core.validation import RowId
from idsvc.registry import site_plans

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[ConsoleSession, Depends(current)]
Csrf = Annotated[str, Form(max_length=100)]


@router.get("/console/sites/{site_id}/plan/edit")
def plan_editor(request: Request, ctx: Ctx, signed: Signed, site_id: RowId) -> Response:
    with ctx.db.session() as s:
        site = screen.screen_site(s, signed.principal, site_id)
        uploaded = site_plans.get(s, signed.principal, site.id)
        return render(request, "plan_edit.html", signed, site=site, doors=screen.door_views(s, signed.principal, site),
                      uploaded=uploaded is not None and uploaded.image is not None)


@router.post("/console/sites/{site_id}/plan/image")
async def upload_plan(ctx: Ctx, signed: Signed, site_id: RowId, csrf: Csrf, image: Annotated[UploadFile | None, File()] = None) -> Response:
    check_csrf(signed.csrf, csrf)
    if image is None:
        raise InvalidInput("Choose a picture of the site plan (PNG or JPEG).", code="image_missing")
    data = await image.read(site_plans.MAX_BYTES + 1)

    def save() -> None:
        with ctx.db.session() as s:
            site_plans.upload_image(s, signed.principal, site_id, data)

    await run_in_threadpool(save)
    return redirect(f"/console/sites/{site_id}/plan/edit")


@router.post("/console/sites/{site_id}/plan/doors")
def place_door(ctx: Ctx, signed: Signed, site_id: RowId, csrf: Csrf, door_id: Annotated[int, Form(ge=1)], x: Annotated[float, Form()], y: Annotated[float, Form()]) -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        site_plans.place_door(s, signed.principal, site_id, door_id, x, y)
    return redirect(f"/console/sites/{site_id}/plan/edit")
