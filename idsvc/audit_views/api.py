"""Audit trail over HTTP: query with filters, CSV export, chain head and verification."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from idsvc.audit import service
from idsvc.audit_views import scope
from idsvc.auth.deps import Caller, Ctx
from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.validation import RowId, Seq, ShortText, Timestamp

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class AuditQuery(BaseModel):
    site_id: RowId | None = None
    door_id: RowId | None = None
    person_id: RowId | None = None
    actor: ShortText | None = Query(None, max_length=80)
    kind: ShortText | None = Query(None, max_length=64, description="Exact kind, or a prefix ending in '.' such as 'grant.'")
    since: Timestamp | None = None
    until: Timestamp | None = None
    after_seq: Seq | None = Query(None, description="Cursor: return events after this sequence number.")


def _scoped_filter(ctx: Ctx, caller: Principal, q: AuditQuery) -> service.AuditFilter:
    with ctx.db.session() as s:
        return scope.narrowed(s, caller, service.AuditFilter(**q.model_dump()))


@router.get("/events")
def list_events(
    ctx: Ctx, caller: Caller, q: Annotated[AuditQuery, Depends()], limit: int = Query(100, ge=1, le=1000)
) -> dict[str, Any]:
    flt = _scoped_filter(ctx, caller, q)
    with ctx.db.session() as s:
        events = service.query(s, flt, limit)
        return {
            "events": list(scope.shown(caller, flt, events)),
            "next_after_seq": events[-1].seq if len(events) == limit else None,
        }


@router.get("/events.csv")
def export_csv(ctx: Ctx, caller: Caller, q: Annotated[AuditQuery, Depends()]) -> StreamingResponse:
    flt = _scoped_filter(ctx, caller, q)

    def stream() -> Any:
        with ctx.db.session() as s:
            yield from service.csv_lines(scope.shown(caller, flt, service.iter_events(s, flt)))

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(stream(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})


class HeadOut(BaseModel):
    seq: int
    hash: str


@router.get("/head")
def head(ctx: Ctx, caller: Caller) -> HeadOut:
    """The chain tip: an outside witness that stores it now and then can prove later edits."""
    caller.require_role(Role.district_admin, Role.site_admin)
    with ctx.db.session() as s:
        report = service.chain_head(s)
        return HeadOut(seq=report[0], hash=report[1])


@router.get("/verify")
def verify(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    caller.require_district_admin()
    with ctx.db.session() as s:
        return service.verify(s).__dict__
