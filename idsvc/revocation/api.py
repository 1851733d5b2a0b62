"""HTTP verbs of revocation, and the per-issuer status lists with caching headers.

Verbs sit on the resources, like the registry's ``POST /v1/grants/{id}/revoke``:

- ``POST /v1/people/{id}/revoke|suspend|reinstate`` (revoke cascades to passes, grants, templates)
- ``POST /v1/devices/{id}/revoke|suspend|reinstate``
- ``POST /v1/issuer-keys/{kid}/withdraw``
- passes and grants keep their own routes: ``POST /v1/passes/{id}/status`` and
  ``POST /v1/grants/{id}/revoke|suspend|reinstate``.

Every body is ``{"reason": "..."}``; the reason and the caller land in the audit trail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from idsvc.auth.deps import Caller, Ctx
from idsvc.core.validation import RowId
from idsvc.passes import status as pass_status
from idsvc.passes import versions
from idsvc.registry.schemas import StatusChange
from idsvc.revocation import service
from idsvc.revocation.service import Verb

Kid = Annotated[str, Path(pattern="^[0-9a-f]{16}$", description="hex of the 8-byte COSE kid")]
CBOR = "application/cbor"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Fill this node's deny set (and the shared Redis copy) from the database before serving, and
    keep the one-second backstop poll running while serving."""
    ctx = app.state.ctx

    def rebuild() -> None:
        with ctx.db.session() as s:
            ctx.deny.rebuild(s)

    app.state.status_lists = {}
    await run_in_threadpool(rebuild)
    stop_watching = ctx.deny.watch(ctx.db)
    try:
        yield
    finally:
        await run_in_threadpool(stop_watching)


router = APIRouter(prefix="/v1", tags=["revocation"], lifespan=_lifespan)

def _verb_routes(collection: str, name: str, change: service.Change) -> None:
    """One route per verb (not ``/{verb}``, which would shadow the other domains' ``/people/{id}/...``)."""
    def make(verb: Verb) -> Callable[..., dict[str, Any]]:
        def handler(item_id: RowId, body: StatusChange, ctx: Ctx, caller: Caller) -> dict[str, Any]:
            with ctx.db.session() as s:
                return change(s, caller, item_id, verb, body.reason).to_dict()

        return handler

    for verb in Verb:
        router.add_api_route(f"/{collection}/{{item_id}}/{verb.value}", make(verb), methods=["POST"], name=f"{verb.value}_{name}", summary=f"{verb.value.capitalize()} a {name}")


_verb_routes("people", "person", service.change_person)
_verb_routes("devices", "device", service.change_device)


@router.post("/issuer-keys/{kid}/withdraw")
def withdraw_issuer_key(kid: Kid, body: StatusChange, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """District admins only. Every pass the key signed is refused from now on, at every door."""
    with ctx.db.session() as s:
        return service.withdraw_issuer_key(s, caller, kid, body.reason).to_dict()


@router.get("/status-lists/{kid}", response_class=Response, responses={200: {"content": {CBOR: {}}}, 304: {"description": "unchanged"}})
def status_list(kid: Kid, request: Request, ctx: Ctx, caller: Caller) -> Response:
    """The signed 2-bit status list of one issuer key. ``ETag`` names the status version, so a bridge
    polling with ``If-None-Match`` gets an empty 304 until something changes; ``no-cache`` lets
    caches keep it but makes them ask every time (a revocation must not wait for an expiry)."""
    with ctx.db.session() as s:
        _, version = versions.read(s)
        etag = f'"{kid}-{version}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        cache: dict[str, bytes] = getattr(request.app.state, "status_lists", {})
        document = cache.get(etag)
        if document is None:
            document = pass_status.status_list(s, ctx.sealer, kid)
            if len(cache) > 64:
                cache.clear()
            cache[etag] = document  # one version, one byte string: the ETag stays a strong validator
    return Response(document, media_type=CBOR, headers=headers)
