"""HTTP side of the sync feed: the signed document, and a Server-Sent Events stream of feed versions.

A bridge keeps ``GET /v1/sync/sites/{id}/events`` open; each committed change of its site (on any
node: the notice travels over Redis pub/sub) arrives as an event naming the new version, and the
bridge then asks ``GET /v1/sync/sites/{id}/feed?since=<its version>``. The event is only a hint; the
signed feed is the authority. Without the stream (or when it breaks) the bridge polls the feed,
at least every 60 s: every answer is freshly signed, which is also how a bridge proves to itself
that its copy is recent (no ETag/304 here on purpose: an unsigned 304 proves nothing).

Why SSE: one-way is all that is needed, it is plain HTTP through the same proxies, TLS and API keys
as the rest of the device API, and ``Last-Event-ID`` plus ``retry`` give reconnection for free.
WebSocket adds a second protocol for no gain; MQTT would need a broker reachable from the
service. See docs/sync.md for the measured delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from idsvc.auth.deps import Caller, Ctx
from idsvc.auth.models import Role
from idsvc.core import metrics
from idsvc.core.bus import Notice
from idsvc.core.validation import RowId, Seq
from idsvc.registry.models import Site
from idsvc.registry.scope import not_visible
from idsvc.sync import changes, feed

router = APIRouter(prefix="/v1/sync", tags=["sync"])
CBOR = "application/cbor"


def synced_site(site_id: RowId, ctx: Ctx, caller: Caller) -> int:
    """The site, if the caller is one of its devices (a bridge) or administers it; else 404."""
    allowed = caller.administers_site(site_id) or (caller.role is Role.device and caller.site_id == site_id)
    with ctx.db.session() as s:
        if not allowed or s.get(Site, site_id) is None:
            raise not_visible("site", site_id)
    return site_id


SyncedSite = Annotated[int, Depends(synced_site)]


@router.get("/sites/{site_id}/feed", response_class=Response, responses={200: {"content": {CBOR: {}}}})
def get_feed(site_id: SyncedSite, ctx: Ctx, since: Annotated[Seq | None, Query(description="the version the bridge holds; none = full snapshot")] = None) -> Response:
    with ctx.db.session() as s:
        version, document = feed.build(s, ctx.sealer, ctx.bus, ctx.settings, site_id, since)
    return Response(document, media_type=CBOR, headers={"Cache-Control": "no-store", "X-Feed-Version": str(version)})


@router.get("/sites/{site_id}/events", response_class=EventSourceResponse)
async def feed_events(site_id: SyncedSite, ctx: Ctx) -> AsyncIterator[ServerSentEvent]:
    """``event: version`` with ``id`` = the feed version: first the current one, then one per change."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    latest = [0]  # only the newest version matters to a bridge, so no queue

    def note(version: int) -> None:  # on the event loop
        latest[0] = max(latest[0], version)
        changed.set()

    def on_notice(notice: Notice) -> None:  # on the bus thread
        version, sites = notice.get("version"), notice.get("sites") or []
        if version is not None and (site_id in sites or None in sites):
            loop.call_soon_threadsafe(note, version)

    unsubscribe = ctx.bus.subscribe(on_notice)
    metrics.FEED_STREAMS.inc()
    try:

        def read_version() -> int:
            with ctx.db.session() as s:
                return changes.current_version(s)[0]

        sent = await run_in_threadpool(read_version)
        yield ServerSentEvent(event="version", id=str(sent), data={"version": sent}, retry=1000)
        while True:
            await changed.wait()
            changed.clear()
            if latest[0] > sent:
                sent = latest[0]
                yield ServerSentEvent(event="version", id=str(sent), data={"version": sent})
    finally:
        metrics.FEED_STREAMS.dec()
        unsubscribe()
