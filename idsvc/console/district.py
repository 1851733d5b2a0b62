"""The district officer's pages: statistics per site and building (small counts shown as "<5") and
the tenant registration export (CSV or XLSX) with its purpose recorded and audited.

Site admins see the same pages for their own site; the rules are the registry's
(``statistics.sites_for``) and the privacy domain's (``registrations.registration_rows``).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import JSONResponse
from openpyxl import Workbook

from idsvc.auth.deps import Ctx
from idsvc.console.i18n import Translator
from idsvc.console.session import ConsoleSession, check_csrf, current
from idsvc.console.web import ConsoleRoute, render, translator
from idsvc.core.db import utcnow
from idsvc.core.validation import RowId
from idsvc.privacy import registrations
from idsvc.registry import personal, statistics, tenancies
from idsvc.registry.suppression import Group, protect

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[ConsoleSession, Depends(current)]


@router.get("/console/statistics")
def statistics_page(
    request: Request, ctx: Ctx, signed: Signed, site_id: Annotated[RowId | None, Query()] = None,
    first: Annotated[date | None, Query(alias="from")] = None, last: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    first, last = statistics.days(first, last)
    with ctx.db.session() as s:
        rows = statistics.figures(s, signed.principal, first, last, utcnow(), site_id)
        sites = statistics.sites_for(s, signed.principal, None)
        return render(request, "statistics.html", signed, rows=rows, sites=sites, site_id=site_id, first=first, last=last, provinces=personal.PROVINCES)


@router.get("/console/statistics/daily.json")
def daily_figures(
    ctx: Ctx, signed: Signed, site_id: Annotated[RowId | None, Query()] = None,
    first: Annotated[date | None, Query(alias="from")] = None, last: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """Arrivals and departures per day over the sites shown, for the chart; a suppressed day ("<5" or "x") is null."""
    first, last = statistics.days(first, last)
    arrivals, departures = Counter[date](), Counter[date]()
    with ctx.db.session() as s:
        for site in statistics.sites_for(s, signed.principal, site_id):
            for day in tenancies.daily(s, site, first, last):
                arrivals[day.day] += day.arrivals
                departures[day.day] += day.departures
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def shown(counts: Counter[date]) -> list[int | None]:
        # The days add up to the arrivals (departures) the statistics table shows: suppressed as a group.
        cells = protect({"all": sum(counts.values()), **{d: counts[d] for d in days}}, [Group("all", days)])
        return [cell if isinstance(cell, int) else None for d, cell in cells.items() if d != "all"]

    return JSONResponse({"days": [d.isoformat() for d in days], "arrivals": shown(arrivals), "departures": shown(departures)})


@router.get("/console/registrations")
def export_form(request: Request, ctx: Ctx, signed: Signed) -> Response:
    first, last = statistics.days(None, None)
    with ctx.db.session() as s:
        sites = statistics.sites_for(s, signed.principal, None)
        return render(request, "export.html", signed, sites=sites, first=first - timedelta(days=23), last=last, formats=registrations.FORMATS)


@router.post("/console/registrations/export")
def export(
    request: Request, ctx: Ctx, signed: Signed, csrf: Annotated[str, Form(max_length=100)], site_id: Annotated[int, Form(ge=1)],
    purpose: Annotated[str, Form(max_length=200)], file_format: Annotated[str, Form(alias="format", max_length=8)],
    first: Annotated[date, Form(alias="from")], last: Annotated[date, Form(alias="to")],
) -> Response:
    """The file, named after the site and days; the export is in the audit trail before the file leaves."""
    check_csrf(signed.csrf, csrf)
    first, last = statistics.days(first, last)
    with ctx.db.session() as s:
        rows = registrations.registration_rows(s, signed.principal, site_id, first, last, purpose=purpose, file_format=file_format)
    t = translator(request)
    name = f"registrations-site{site_id}-{first.isoformat()}-{last.isoformat()}.{file_format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if file_format == "csv":
        return Response(_csv(t, rows).encode("utf-8-sig"), media_type="text/csv; charset=utf-8", headers=headers)  # BOM: Excel reads it as UTF-8
    return Response(_xlsx(t, rows), media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", headers=headers)


def _header(t: Translator) -> list[str]:
    return [t(f"export.column.{column}") for column in registrations.COLUMNS]


def _csv(t: Translator, rows: list[registrations.RegistrationRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_header(t))
    for row in rows:
        writer.writerow([_cell(row.values[c]) for c in registrations.COLUMNS])
    return out.getvalue()


def _cell(value: str | int | None) -> str | int:
    """Empty for a field not collected; text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _xlsx(t: Translator, rows: list[registrations.RegistrationRow]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(_header(t))
    for row in rows:
        sheet.append([_cell(row.values[c]) for c in registrations.COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
