"""The figures district officers ask for, per site and building: registered and occupied units,
residents, arrivals and departures (tenancies started and ended) in a date range (per day too, on a
site's row), registrations overdue, and residents by province of household registration where the
site collects it.

Counts of people from 1 to 4 are shown as ``"<5"`` (small cells could name a household), and where a
site's row, its buildings' rows, a row's provinces or a site's days would let a reader subtract one
out, another cell is hidden as ``"x"`` (registry/suppression.py); counts of units are not people and
are shown as they are. A site's row is computed from the exact figures, then suppressed with its
buildings.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.errors import InvalidInput
from idsvc.registry import personal, sites, tenancies
from idsvc.registry.suppression import Group, protect
from idsvc.registry.grants import grant_end
from idsvc.registry.models import Building, Grant, Person, Site, Unit
from idsvc.registry.site_settings import parse

DISTRICT_ZONE = ZoneInfo("Asia/Shanghai")  # a district's "today" when sites of several zones are shown together
PEOPLE_FIGURES = ("residents", "arrivals", "departures", "registrations_overdue")


def days(first: date | None, last: date | None) -> tuple[date, date]:
    """The days asked for: default the last seven (today in Asia/Shanghai), at most a year."""
    last = last or datetime.now(DISTRICT_ZONE).date()
    first = first or last - timedelta(days=6)
    if not 0 <= (last - first).days < tenancies.MAX_DAYS:
        raise InvalidInput(f"'to' must be on or after 'from', at most {tenancies.MAX_DAYS} days in all.", code="invalid_date_range")
    return first, last


@dataclass
class Area:
    """One row: a whole site (building_id None) or one of its buildings; exact counts until shown."""

    site_id: int
    site_name: str
    building_id: int | None = None
    building_name: str | None = None
    units: int = 0
    occupied_units: set[int] = field(default_factory=set)
    residents: set[int] = field(default_factory=set)
    arrivals: int = 0
    departures: int = 0
    registrations_overdue: set[int] = field(default_factory=set)
    provinces: Counter[str] | None = None  # None: the site does not collect household_province
    per_day: list[tenancies.Day] | None = None  # the site's row only: arrivals and departures per day too

    def exact(self) -> dict[str, int]:
        return {
            "residents": len(self.residents), "arrivals": self.arrivals, "departures": self.departures,
            "registrations_overdue": len(self.registrations_overdue),
        }


CellKey = tuple[Any, ...]  # (row, figure), (row, "province", code) or (row, "day", n, figure)


def _shown(areas: list[Area]) -> list[dict[str, Any]]:
    """A site's rows (its own first, then its buildings') as published: every count of people
    suppressed together, so no hidden cell can be worked out from the others (registry/suppression.py)."""
    values: dict[CellKey, int] = {}
    groups: list[Group[CellKey]] = []
    for row, area in enumerate(areas):
        values |= {(row, name): n for name, n in area.exact().items()}
        if area.provinces is not None:
            values |= {(row, "province", code): n for code, n in area.provinces.items()}
            groups.append(Group((row, "residents"), [(row, "province", code) for code in sorted(area.provinces)]))
        for n, day in enumerate(area.per_day or []):
            values |= {(row, "day", n, "arrivals"): day.arrivals, (row, "day", n, "departures"): day.departures}
        for name in ("arrivals", "departures"):
            if area.per_day is not None:
                groups.append(Group((row, name), [(row, "day", n, name) for n in range(len(area.per_day))]))
    buildings = range(1, len(areas))
    groups += [Group((0, name), [(b, name) for b in buildings]) for name in PEOPLE_FIGURES]
    for code in sorted(areas[0].provinces or {}):
        groups.append(Group((0, "province", code), [(b, "province", code) for b in buildings if code in (areas[b].provinces or {})]))
    cells = protect(values, groups)
    rows = []
    for row, area in enumerate(areas):
        rows.append({
            "site_id": area.site_id, "site_name": area.site_name, "building_id": area.building_id, "building_name": area.building_name,
            "units": area.units, "occupied_units": len(area.occupied_units),
            **{name: cells[(row, name)] for name in PEOPLE_FIGURES},
            "residents_by_province": None if area.provinces is None else {code: cells[(row, "province", code)] for code in sorted(area.provinces)},
            "per_day": None if area.per_day is None else [
                {"day": d.day.isoformat(), "arrivals": cells[(row, "day", n, "arrivals")], "departures": cells[(row, "day", n, "departures")]}
                for n, d in enumerate(area.per_day)
            ],
        })
    return rows


def sites_for(session: Session, principal: Principal, site_id: int | None) -> list[Site]:
    """The sites the caller may see figures of: one they administer, or (district) every site."""
    principal.require_role(Role.district_admin, Role.site_admin)
    if site_id is not None:
        site = sites.get_site(session, principal, site_id)
        principal.require_site_admin(site.id)
        return [site]
    if principal.site_id is not None:
        return sites_for(session, principal, principal.site_id)
    principal.require_district_admin()
    return sites.list_sites(session, principal)


def _site_areas(session: Session, site: Site, first: date, last: date, now: datetime) -> list[Area]:
    zone = ZoneInfo(site.timezone)
    start, stop = datetime.combine(first, time.min, zone), datetime.combine(last + timedelta(days=1), time.min, zone)
    buildings = list(session.scalars(select(Building).where(Building.site_id == site.id).order_by(Building.id)))
    collects_province = "household_province" in parse(site.settings).registration.fields
    total = Area(site.id, site.name, provinces=Counter() if collects_province else None, per_day=tenancies.daily(session, site, first, last))
    areas = {b.id: Area(site.id, site.name, b.id, b.name, provinces=Counter() if collects_province else None) for b in buildings}
    for building_id, count in session.execute(select(Unit.building_id, func.count()).where(Unit.site_id == site.id).group_by(Unit.building_id)):
        areas[building_id].units = count
        total.units += count
    unit_building: dict[int, int] = {unit_id: building_id for unit_id, building_id in session.execute(select(Unit.id, Unit.building_id).where(Unit.site_id == site.id))}
    person_buildings: dict[int, set[int]] = defaultdict(set)
    tenancies_of_site = select(Grant).where(Grant.site_id == site.id, Grant.unit_id.is_not(None), Grant.person_id.is_not(None))
    for grant in session.scalars(tenancies_of_site):
        area = areas[unit_building[grant.unit_id]]  # type: ignore[index]
        end = grant_end(grant)
        if grant.valid_from <= now < end:
            for target in (area, total):
                target.occupied_units.add(grant.unit_id)  # type: ignore[arg-type]
                target.residents.add(grant.person_id)  # type: ignore[arg-type]
            person_buildings[grant.person_id].add(area.building_id)  # type: ignore[index, arg-type]
        if start <= grant.valid_from < stop:
            area.arrivals += 1
            total.arrivals += 1
        if start <= end < stop and end > grant.valid_from:  # revoked before it began: never arrived, never departs
            area.departures += 1
            total.departures += 1
    for overdue in tenancies.registration_overdue(session, site, now):
        total.registrations_overdue.add(overdue.person_id)
        for building_id in person_buildings.get(overdue.person_id, ()):
            areas[building_id].registrations_overdue.add(overdue.person_id)
    if collects_province and person_buildings:
        for person in session.scalars(select(Person).where(Person.id.in_(person_buildings), Person.erased_at.is_(None))):
            code = personal.read(session, person).household_province or "unknown"
            total.provinces[code] += 1  # type: ignore[index]
            for building_id in person_buildings[person.id]:
                areas[building_id].provinces[code] += 1  # type: ignore[index]
    return [total, *areas.values()]


def figures(session: Session, principal: Principal, first: date, last: date, now: datetime, site_id: int | None = None) -> list[dict[str, Any]]:
    """Every row the caller may see, each site followed by its buildings, as shown (suppressed)."""
    return [row for site in sites_for(session, principal, site_id) for row in _shown(_site_areas(session, site, first, last, now))]
