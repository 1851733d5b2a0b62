"""The FastAPI application: one router per domain, one error shape, one context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartParser

from idsvc import __version__
from idsvc.audit.decision_log import DecisionLog
from idsvc.audit_views.api import router as audit_router
from idsvc.auth.api import router as auth_router
from idsvc.config import Settings, get_settings
from idsvc.context import AppContext
from idsvc.core.errors import install_error_handlers
from idsvc.core.limits import BodySizeLimit
from idsvc.device_events.api import router as device_events_router
from idsvc.faces.api import router as faces_router
from idsvc.passes.api import router as passes_router
from idsvc.registry.api import router as registry_router
from idsvc.revocation.api import router as revocation_router
from idsvc.sync.api import router as sync_router

# Uploaded photos must stay in memory (design/privacy.md), but Starlette spools uploads over 1 MB to
# a temp file. 0 = never roll over to disk; BodySizeLimit already bounds what is held in memory.
MultiPartParser.spool_max_size = 0


def create_app(ctx: AppContext | None = None, settings: Settings | None = None) -> FastAPI:
    owned = ctx is None
    context = ctx or AppContext.from_settings(settings or get_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        context.decision_log = DecisionLog(context.db, context.settings.data_dir / "decision-journal")
        try:
            yield
        finally:
            log, context.decision_log = context.decision_log, None
            await run_in_threadpool(log.close)  # flushes what is queued
            if owned:
                context.close()

    app = FastAPI(
        title="idsvc",
        version=__version__,
        description="Access control and identity service: registry, passes, faces, decisions, audit.",
        lifespan=lifespan,
    )
    app.state.ctx = context
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=context.settings.max_body_bytes)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # The device endpoints first: routes are matched in order and locks ask the most often.
    for router in (passes_router, faces_router, device_events_router, auth_router, registry_router, audit_router, revocation_router, sync_router):
        app.include_router(router)
    return app
