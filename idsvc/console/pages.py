"""The console's pages and forms (docs/console.md). Each calls the same service functions as the API."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from idsvc.alarms import notices
from idsvc.alarms import service as alarms
from idsvc.auth import health_data
from idsvc.auth.deps import Ctx
from idsvc.auth.models import Role
from idsvc.console import assets, live, plan, screen
from idsvc.console.i18n import LANGUAGES
from idsvc.console.session import COOKIE, LOGIN_CSRF_COOKIE, SESSION_SECONDS, ConsoleSession, LoginRequired, check_csrf, current, sign_in, sign_out
from idsvc.console.web import LANGUAGE_COOKIE, ConsoleRoute, redirect, render, safe_next, translator
from idsvc.core.bus import Notice
from idsvc.core.errors import Forbidden, Unauthenticated
from idsvc.core.validation import RowId
from idsvc.registry import doors as door_registry
from idsvc.registry import site_plans, sites, units
from idsvc.registry.models import Building, FaceMode, Site

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[ConsoleSession, Depends(current)]
RECHECK_S = 15.0  # how often an open live stream checks that its session's key is still good


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int, *, http_only: bool = True) -> None:
    """Secure whenever the console is reached over HTTPS (behind a proxy: run uvicorn with --proxy-headers)."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=http_only, samesite="strict", secure=request.url.scheme == "https")


@router.get("/")
def root() -> Response:
    return redirect("/console/")


@router.get("/console/")
def home(signed: Signed) -> Response:
    """Each role's first page: district officers the statistics, site staff the screen, landlords their
    units; tenants and devices have none."""
    role = signed.principal.role
    if role is Role.district_admin:
        return redirect("/console/statistics")
    if role is Role.site_admin:
        return redirect("/console/screen")
    if role is Role.owner:
        return redirect("/console/units")
    raise Forbidden("The console is for site staff, landlords and district officers; tenants use their pass app.", code="forbidden_role")


@router.get("/console/login")
def login_form(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, csrf=token, next=safe_next(next), failed=None)
    _cookie(request, response, LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.post("/console/login")
async def login(request: Request, api_key: Annotated[str, Form(max_length=200)], csrf: Annotated[str, Form(max_length=100)], next: Annotated[str, Form(max_length=500)] = "/console/") -> Response:
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf)
    try:
        cookie = await sign_in(request, api_key)
    except Unauthenticated:
        response = render(request, "login.html", None, status=401, csrf=csrf, next=safe_next(next), failed="login.failed")
        return response
    response = redirect(safe_next(next))
    _cookie(request, response, COOKIE, cookie, SESSION_SECONDS)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/console/logout")
def logout(request: Request, signed: Signed, csrf: Annotated[str, Form(max_length=100)]) -> Response:
    check_csrf(signed.csrf, csrf)
    sign_out(request, signed)
    response = redirect("/console/login")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/console/lang/{language}")
def switch_language(request: Request, language: str, next: str | None = None) -> Response:
    response = redirect(safe_next(next))
    if language in LANGUAGES:
        _cookie(request, response, LANGUAGE_COOKIE, language, 365 * 86400, http_only=False)
    return response


@router.get("/console/static/{name:path}")
def static(name: str, request: Request) -> Response:
    asset = assets.load(name)
    if asset is None:
        return HTMLResponse("not found", status_code=404)
    headers = {"ETag": asset.etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/console/screen")
def staff_screen(request: Request, ctx: Ctx, signed: Signed, site_id: Annotated[RowId | None, Query()] = None) -> Response:
    """One screen: the site plan with every door's state, counters, the live stream, the alarm list."""
    with ctx.db.session() as s:
        site = screen.screen_site(s, signed.principal, site_id)
        doors = screen.door_views(s, signed.principal, site)
        names = {d.id: d.name for d in doors}
        return render(
            request, "screen.html", signed, timezone=site.timezone, states=screen.DOOR_STATES, site=site, sites=sites.list_sites(s, signed.principal),
            counters=screen.counters(s, signed.principal, site), doors=doors, door_rows=screen.needing_attention(doors),
            alarms=screen.active_alarms(s, signed.principal, site),
            recent=[screen.stream_item(e, names) for e in screen.recent_events(s, site)],
        )


@router.get("/console/sites/{site_id}/doors")
def door_table(request: Request, ctx: Ctx, signed: Signed, site_id: RowId) -> Response:
    """Every door of the site with its state (the screen lists those needing attention first)."""
    with ctx.db.session() as s:
        site = screen.screen_site(s, signed.principal, site_id)
        return render(request, "doors.html", signed, timezone=site.timezone, site=site, door_rows=screen.door_views(s, signed.principal, site))


@router.get("/console/sites/{site_id}/plan")
def site_plan(ctx: Ctx, signed: Signed, site_id: RowId) -> Response:
    """The uploaded plan image, or the generated SVG plan when none was uploaded."""
    with ctx.db.session() as s:
        site = screen.screen_site(s, signed.principal, site_id)
        uploaded = site_plans.get(s, signed.principal, site.id)
        if uploaded is not None and uploaded.image is not None:
            return Response(uploaded.image, media_type=uploaded.media_type or "application/octet-stream")
        svg = plan.plan_svg(site.name, sites.list_buildings(s, signed.principal, site.id))
    return Response(svg, media_type="image/svg+xml")


@router.get("/console/sites/{site_id}/doors.json")
def site_doors(ctx: Ctx, signed: Signed, site_id: RowId) -> Response:
    """Each door's state and place; width and height are the plan's (the uploaded image's, or the generated one's)."""
    with ctx.db.session() as s:
        site = screen.screen_site(s, signed.principal, site_id)
        doors = [d.to_json() for d in screen.door_views(s, signed.principal, site)]
        uploaded = site_plans.get(s, signed.principal, site.id)
        width, height = (uploaded.width, uploaded.height) if uploaded is not None and uploaded.image is not None else (plan.WIDTH, plan.HEIGHT)
    return JSONResponse({"site_id": site_id, "width": width, "height": height, "doors": doors})


@router.get("/console/doors/{door_id}")
def door_page(request: Request, ctx: Ctx, signed: Signed, door_id: RowId) -> Response:
    """A door: its devices, its face policy and its latest events."""
    with ctx.db.session() as s:
        door = door_registry.get_door(s, signed.principal, door_id)
        site = s.get(Site, door.site_id)
        devices = [d for d in door_registry.list_devices(s, signed.principal, door.site_id) if any(x.id == door.id for x in d.doors)]
        history = [screen.stream_item(e, {door.id: door.name}) for e in screen.door_history(s, door)]
        building = s.get(Building, door.building_id) if door.building_id else None
        return render(request, "door.html", signed, timezone=site.timezone if site else "Asia/Shanghai", door=door, devices=devices, history=history, building=building,
                      face_modes=[m.value for m in FaceMode])


@router.get("/console/units")
def unit_list(request: Request, ctx: Ctx, signed: Signed) -> Response:
    with ctx.db.session() as s:
        listed = units.list_units(s, signed.principal)
        return render(request, "units.html", signed, units=listed)


def _tail(request: Request) -> live.TrailTail:
    state = request.app.state
    if getattr(state, "console_tail", None) is None:
        state.console_tail = live.TrailTail(state.ctx.db)
    return state.console_tail  # type: ignore[no-any-return]


def _streamed_site(ctx: Ctx, signed: Signed, site_id: Annotated[RowId, Query()]) -> tuple[Site, dict[int, str]]:
    """Checked before the stream opens, so a refusal is a 403/404 page, not an empty stream."""
    with ctx.db.session() as s:
        site = screen.screen_site(s, signed.principal, site_id)
        names = {d.id: d.name for d in door_registry.list_doors(s, signed.principal, site.id)}
        s.expunge(site)
        return site, names


@router.get("/console/events", response_class=EventSourceResponse)
async def events(
    request: Request, ctx: Ctx, signed: Signed, streamed: Annotated[tuple[Site, dict[int, str]], Depends(_streamed_site)],
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """The screen's live stream: ``door`` (a decision or device event), ``alarm`` (raised, acknowledged,
    cleared: the alarm as the API returns it) and ``doorstate`` (a door's new colour)."""
    site, names = streamed
    t = translator(request, site.timezone)
    # Where the screen's page (or, on a reconnect, the last event received) left off: nothing in between is lost.
    resume = request.headers.get("last-event-id", "")
    last_sent = int(resume) if resume.isdigit() else (after or 0)
    loop = asyncio.get_running_loop()
    alarm_notices: asyncio.Queue[Notice] = asyncio.Queue(maxsize=1000)

    def on_notice(notice: Notice) -> None:  # on the bus thread
        if notices.is_alarm_notice(notice) and notice["alarm"].get("site_id") == site.id:
            loop.call_soon_threadsafe(lambda: alarm_notices.full() or alarm_notices.put_nowait(notice))

    def door_state(door_id: int) -> dict[str, object] | None:
        with ctx.db.session() as s:
            views = [d for d in screen.door_views(s, signed.principal, site) if d.id == door_id]
        return views[0].to_json() if views else None

    tail = _tail(request)
    checked_at = loop.time()
    watcher = tail.open(site.id)
    unsubscribe = ctx.bus.subscribe(on_notice)
    try:
        yield ServerSentEvent(event="ready", data={"site_id": site.id}, retry=1000)
        if last_sent:
            for event in await run_in_threadpool(tail.since, site.id, last_sent):
                watcher.queue.put_nowait(event)
        while True:
            door_event = asyncio.ensure_future(watcher.queue.get())
            alarm_event = asyncio.ensure_future(alarm_notices.get())
            done, pending = await asyncio.wait({door_event, alarm_event}, timeout=RECHECK_S, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if loop.time() - checked_at > RECHECK_S:  # is the session's key still good? A revoked key ends the stream too
                try:
                    await current(request)
                except LoginRequired:
                    return
                checked_at = loop.time()
            if not done:
                yield ServerSentEvent(comment="keep-alive")
            if door_event in done and door_event.result().seq > last_sent:  # the catch-up and the tail may both hold an event
                item = screen.stream_item(door_event.result(), names)
                last_sent = item.seq
                shown = {"at_local": t.datetime(item.at), "reasons_text": ", ".join(t.reason(r) for r in item.reasons), "kind_text": t.event(item.kind)}
                yield ServerSentEvent(event="door", id=str(item.seq), data={**item.to_json(), **shown})
            if alarm_event in done:
                notice = alarm_event.result()
                yield ServerSentEvent(event="alarm", data=notice | {"alarm": health_data.shown(signed.principal, notice["alarm"], kind_field="type")})
                door_id = notice["alarm"].get("door_id")
                state = await run_in_threadpool(door_state, door_id) if door_id else None
                if state is not None:
                    yield ServerSentEvent(event="doorstate", data=state)
    finally:
        unsubscribe()
        tail.close(watcher)


@router.get("/console/alarms/table")
def alarm_table(request: Request, ctx: Ctx, signed: Signed, site_id: Annotated[RowId, Query()], next: str | None = None) -> Response:
    """The alarm list alone, for the screen to swap in when an alarm notice arrives."""
    with ctx.db.session() as s:
        site = screen.screen_site(s, signed.principal, site_id)
        return render(request, "alarms_table.html", signed, timezone=site.timezone, here=safe_next(next), alarms=screen.active_alarms(s, signed.principal, site))


@router.post("/console/alarms/{alarm_id}/acknowledge")
def acknowledge_alarm(ctx: Ctx, signed: Signed, alarm_id: RowId, csrf: Annotated[str, Form(max_length=100)], next: Annotated[str, Form(max_length=500)] = "/console/") -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        alarms.acknowledge(s, ctx.bus, signed.principal, alarm_id)
    return redirect(safe_next(next))


@router.post("/console/alarms/{alarm_id}/clear")
def clear_alarm(
    ctx: Ctx, signed: Signed, alarm_id: RowId, csrf: Annotated[str, Form(max_length=100)], reason: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=500)] = "/console/",
) -> Response:
    check_csrf(signed.csrf, csrf)
    with ctx.db.session() as s:
        alarms.clear(s, ctx.bus, signed.principal, alarm_id, reason)
    return redirect(safe_next(next))


