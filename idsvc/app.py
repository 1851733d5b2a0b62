"""The FastAPI application: one router per domain, one error shape, one context."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.formparsers import MultiPartParser

from idsvc import __version__
from idsvc.alarms.api import router as alarms_router
from idsvc.alarms.runtime import AlarmRuntime
from idsvc.audit.decision_log import JOURNAL_DIR, DecisionLog
from idsvc.audit_views.api import router as audit_router
from idsvc.auth.api import router as auth_router
from idsvc.config import Settings, get_settings
from idsvc.console.routes import router as console_router
from idsvc.context import AppContext
from idsvc.core import metrics
from idsvc.core.errors import install_error_handlers
from idsvc.core.health import Check, ProbeFailed, run_checks
from idsvc.core.limits import BodySizeLimit
from idsvc.core.metrics import RequestTimer
from idsvc.core.times import use_rfc3339_in_plain_answers
from idsvc.device_events.api import router as device_events_router
from idsvc.faces import filing
from idsvc.faces.api import router as faces_router
from idsvc.faces.service import FaceEngineUnavailable, engine_for
from idsvc.jobs import scheduler
from idsvc.jobs.api import router as jobs_router
from idsvc.passes.api import router as passes_router
from idsvc.privacy.api import router as privacy_router
from idsvc.registry.api import router as registry_router
from idsvc.revocation.api import router as revocation_router
from idsvc.sync.api import router as sync_router

log = logging.getLogger(__name__)

# Uploaded photos must stay in memory (design/privacy.md), but Starlette spools uploads over 1 MB to
# a temp file. 0 = never roll over to disk; BodySizeLimit already bounds what is held in memory.
MultiPartParser.spool_max_size = 0
use_rfc3339_in_plain_answers()  # every time in every answer: RFC 3339 UTC with Z (core/times.py)


def _face_engine(settings: Settings) -> str:
    try:
        return f"model pack {engine_for(settings).pack}"
    except FaceEngineUnavailable:
        raise ProbeFailed(f"model pack {settings.face_pack} is not installed: run `idsvc models install`; face endpoints answer 503") from None


def _face_engine_loaded(settings: Settings) -> bool:
    try:
        _face_engine(settings)
    except ProbeFailed:
        return False
    return True


def readiness_checks(context: AppContext) -> list[Check]:
    def database() -> str:
        with context.db.session() as session:
            session.execute(text("SELECT 1"))
        return context.db.engine.dialect.name

    return [
        Check("database", database),
        Check("kv", context.kv.ping),
        Check("face_engine", lambda: _face_engine(context.settings), required=False),
    ]


def create_app(ctx: AppContext | None = None, settings: Settings | None = None) -> FastAPI:
    owned = ctx is None
    context = ctx or AppContext.from_settings(settings or get_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        context.decision_log = DecisionLog(context.db, context.settings.data_dir / JOURNAL_DIR)
        settings = context.settings
        alarms = AlarmRuntime(context.db, context.sealer, context.bus, sweep_s=settings.alarm_sweep_s, hj212_host=settings.hj212_host, hj212_port=settings.hj212_port)
        await alarms.start()
        # The periodic jobs (purge, pruning, journal compaction, retention): every node looks, one runs each.
        jobs = scheduler(context) if settings.scheduler_enabled else None
        if jobs is not None:
            jobs.start()
        stop_observing = context.bus.subscribe(metrics.observe_notice)
        try:
            yield
        finally:
            stop_observing()
            if jobs is not None:
                await run_in_threadpool(jobs.stop)
            await alarms.close()
            log, context.decision_log = context.decision_log, None
            await run_in_threadpool(log.close)  # flushes what is queued
            if owned:
                context.close()

    # The interactive docs load Swagger UI and ReDoc from the package, not a CDN: sites without internet use them too.
    app = FastAPIOffline(
        title="idsvc",
        version=__version__,
        description="Access control and identity service: registry, passes, faces, decisions, audit. "
        "Authorize with an API key (`Authorization: Bearer idsvc_...`). Errors: docs/errors.md.",
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},  # no call to validator.swagger.io
    )
    app.state.ctx = context
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=context.settings.max_body_bytes)
    app.add_middleware(RequestTimer)
    checks = readiness_checks(context)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        """Always 200 while the process serves requests; whether it can do its work is ``/readyz``."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"], summary="Readiness: each dependency's state", responses={503: {"description": "a required dependency is down"}})
    def readyz() -> JSONResponse:
        """``{"status", "version", "checked_at", "checks": {name: {"state", "required", "latency_ms", "detail"}}}``;
        503 when a required check (database, key-value store) is down. The face engine is not required:
        without it the face endpoints answer 503 ``face_engine_unavailable`` and QR doors keep working."""
        ready, answer = run_checks(checks, __version__)
        return JSONResponse(answer, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response, responses={200: {"content": {metrics.CONTENT_TYPE: {}}}})
    def prometheus_metrics() -> Response:
        """Decisions by method, result and reason, request latency, feed notices and streams, the face engine's state, enrolled faces per site (docs/operations.md)."""
        metrics.FACE_ENGINE_UP.set(1 if _face_engine_loaded(context.settings) else 0)
        try:
            with context.db.session() as session:
                metrics.set_enrolled_people(filing.enrolled_people(session))
        except SQLAlchemyError:  # a database outage must not hide the other metrics (readyz reports it)
            log.warning("metrics: enrolled faces not counted, the database did not answer", exc_info=True)
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    # The device endpoints first: routes are matched in order and locks ask the most often.
    for router in (
        passes_router, faces_router, device_events_router, auth_router, registry_router, audit_router, revocation_router, sync_router, alarms_router,
        privacy_router, jobs_router, console_router,
    ):
        app.include_router(router)
    return app
