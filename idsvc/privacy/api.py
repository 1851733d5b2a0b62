"""HTTP views: a person's export and erasure (site admins, on the person's request)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from idsvc.auth.deps import Caller, get_context
from idsvc.core.validation import RowId
from idsvc.privacy.erasure import erase_person
from idsvc.privacy.export import export_person
from idsvc.privacy.requests import ErasureOrExportRequest
from idsvc.registry.index import DoorContext

router = APIRouter(prefix="/v1/people", tags=["privacy"])


@router.post("/{person_id}/export")
def export(person_id: RowId, body: ErasureOrExportRequest, ctx: Annotated[DoorContext, Depends(get_context)], caller: Caller) -> dict[str, Any]:
    """Everything held about the person, as one JSON document; the export is audited with requester and purpose."""
    _flush_decisions(ctx)  # a decision already answered at a door is held, even if still queued for the trail
    with ctx.db.session() as s:
        return export_person(s, caller, person_id, body)


@router.post("/{person_id}/erase")
async def erase(person_id: RowId, body: ErasureOrExportRequest, ctx: Annotated[DoorContext, Depends(get_context)], caller: Caller) -> dict[str, Any]:
    """Erase the person: revoke what is live, delete what describes them, pseudonymise the audit trail."""

    def work() -> dict[str, Any]:
        _flush_decisions(ctx)  # decisions still queued for the trail are pseudonymised with the rest
        with ctx.db.session() as s:
            done = erase_person(s, caller, person_id, body)
        ctx.db.compact_wal()
        return asdict(done)

    return await run_in_threadpool(work)


def _flush_decisions(ctx: DoorContext) -> None:
    """This process's queued decisions into the trail (another node's queue is under a second old)."""
    if ctx.decision_log is not None:
        ctx.decision_log.flush()
