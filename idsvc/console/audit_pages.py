"""The audit trail in the console: search with filters, page on, export as CSV. The caller sees what
``GET /v1/audit/events`` would show them (``audit_views.scope.narrowed``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from idsvc.audit import service
from idsvc.audit_views import scope
from idsvc.auth.deps import Ctx
from idsvc.console.session import ConsoleSession, current
from idsvc.console.web import ConsoleRoute, render
from idsvc.core.validation import RowId, Seq, ShortText
from idsvc.registry.models import Site

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[ConsoleSession, Depends(current)]
PAGE = 100


class AuditSearch(BaseModel):
    """The search form: days are calendar days in the caller's site's time zone (Asia/Shanghai for a district)."""

    kind: ShortText | None = Query(None, max_length=64)
    door_id: RowId | None = None
    person_id: RowId | None = None
    since: date | None = None
    until: date | None = None
    after_seq: Seq | None = None


def _filter(ctx: Ctx, signed: ConsoleSession, q: AuditSearch) -> tuple[service.AuditFilter, str]:
    with ctx.db.session() as s:
        site = s.get(Site, signed.principal.site_id) if signed.principal.site_id else None
        zone = site.timezone if site else "Asia/Shanghai"

        def start(day: date | None) -> datetime | None:
            return datetime.combine(day, time.min, ZoneInfo(zone)) if day else None

        flt = service.AuditFilter(
            kind=q.kind or None, door_id=q.door_id, person_id=q.person_id, since=start(q.since),
            until=start(q.until + timedelta(days=1)) if q.until else None, after_seq=q.after_seq,
        )
        return scope.narrowed(s, signed.principal, flt), zone


@router.get("/console/audit")
def audit_search(request: Request, ctx: Ctx, signed: Signed, q: Annotated[AuditSearch, Depends()]) -> Response:
    flt, zone = _filter(ctx, signed, q)
    with ctx.db.session() as s:
        found = service.query(s, flt, PAGE)
    at = {e.seq: e.at for e in found}  # the page shows times in the site's zone
    events = [row | {"at": at[row["seq"]]} for row in scope.shown(signed.principal, flt, found)]
    query = {k: v for k, v in q.model_dump(exclude_none=True).items() if k != "after_seq"}
    return render(request, "audit.html", signed, timezone=zone, events=events, q=q, query=query, next_after=found[-1].seq if len(found) == PAGE else None)


@router.get("/console/audit.csv")
def audit_export(ctx: Ctx, signed: Signed, q: Annotated[AuditSearch, Depends()]) -> Response:
    flt, _zone = _filter(ctx, signed, q)

    def lines() -> Iterator[str]:
        with ctx.db.session() as s:
            yield from service.csv_lines(scope.shown(signed.principal, flt, service.iter_events(s, flt)))

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(lines(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})
