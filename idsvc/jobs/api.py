"""``GET /v1/jobs`` (state of the periodic jobs) and ``POST /v1/jobs/{name}/run`` (now, or a dry run)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from idsvc.auth.deps import Caller
from idsvc.context import AppContext
from idsvc.core.errors import Conflict, NotFound
from idsvc.core.scheduler import JobNotFound
from idsvc.jobs import scheduler

router = APIRouter(prefix="/v1/jobs", tags=["ops"])


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[AppContext, Depends(_ctx)]


@router.get("")
def list_jobs(ctx: Ctx, caller: Caller) -> list[dict[str, Any]]:
    """Each job: what it does, how often, when it last ran, where, with what result, and when it runs next."""
    caller.require_district_admin()
    return scheduler(ctx).states()


@router.post("/{name}/run")
async def run_job(name: str, ctx: Ctx, caller: Caller, dry_run: Annotated[bool, Query(description="Report what would go; change nothing.")] = False) -> dict[str, Any]:
    caller.require_district_admin()
    try:
        result = await run_in_threadpool(scheduler(ctx).run_now, name, dry_run=dry_run)
    except JobNotFound:
        raise NotFound(f"No job '{name}'; GET /v1/jobs lists them.", code="job_not_found") from None
    if result is None:
        raise Conflict(f"Job '{name}' is running on another node or process; try again when it has finished.", code="job_running")
    return result
