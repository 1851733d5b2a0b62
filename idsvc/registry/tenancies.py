"""Tenancy figures the police registration of rental housing asks for: arrivals and departures per
day, and registrations overdue. A tenancy is a grant for a unit (``unit_id`` set) to a person: it
starts at ``valid_from`` and ends at its revocation (``ended_at``) or at ``valid_until``. Days are
the site's calendar days, in its time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from idsvc.registry.grants import grant_end
from idsvc.registry.models import Grant, Person, Site, Status
from idsvc.registry.site_settings import parse

MAX_DAYS = 366


@dataclass
class Day:
    day: date
    arrivals: int = 0
    departures: int = 0


def _tenancies(site_id: int) -> object:
    return select(Grant).where(Grant.site_id == site_id, Grant.unit_id.is_not(None), Grant.person_id.is_not(None))


def daily(session: Session, site: Site, first: date, last: date) -> list[Day]:
    """Arrivals (tenancies starting) and departures (tenancies ending) per day, first..last inclusive."""
    zone = ZoneInfo(site.timezone)
    start = datetime.combine(first, time.min, zone)
    stop = datetime.combine(last + timedelta(days=1), time.min, zone)
    days = {first + timedelta(days=n): Day(first + timedelta(days=n)) for n in range((last - first).days + 1)}
    rows = session.scalars(
        _tenancies(site.id).where(  # type: ignore[attr-defined]
            or_(
                (Grant.valid_from >= start) & (Grant.valid_from < stop),
                (Grant.valid_until >= start) & (Grant.valid_until < stop),
                (Grant.ended_at >= start) & (Grant.ended_at < stop),
            )
        )
    )
    for grant in rows:
        if start <= grant.valid_from < stop:
            days[grant.valid_from.astimezone(zone).date()].arrivals += 1
        end = grant_end(grant)
        # A tenancy revoked before it began never arrived, so it does not depart either.
        if start <= end < stop and end > grant.valid_from:
            days[end.astimezone(zone).date()].departures += 1
    return list(days.values())


@dataclass
class Overdue:
    person_id: int
    tenancy_started: datetime
    missing: list[str]


def registration_overdue(session: Session, site: Site, now: datetime) -> list[Overdue]:
    """People living in the site (a current tenancy) who arrived more than the site's deadline ago and
    whose registration lacks a field the site collects."""
    rules = parse(site.settings).registration
    if not rules.fields:
        return []
    cutoff = now - timedelta(days=rules.deadline_days)
    live = session.scalars(
        _tenancies(site.id).where(Grant.status != Status.revoked, Grant.valid_until > now, Grant.valid_from <= cutoff).order_by(Grant.valid_from)  # type: ignore[attr-defined]
    )
    started: dict[int, datetime] = {}
    for grant in live:
        started.setdefault(grant.person_id, grant.valid_from)  # type: ignore[arg-type]
    out = []
    for person in session.scalars(select(Person).where(Person.id.in_(started), Person.erased_at.is_(None)).order_by(Person.id)):
        missing = [name for name in rules.fields if name not in (person.registration_filled or [])]
        if missing:
            out.append(Overdue(person.id, started[person.id], missing))
    return out
