"""The tenant registration records the rental-housing rules require, exported for a police station.

One row per tenancy of the site that overlaps the chosen days: name, sex, age (on the export day),
household-registration province and place, occupation, workplace, building, unit, tenancy dates.
The registration fields are optional on a person and collected only where the site turns them on
(``settings.registration.fields``); a field the site does not collect stays empty. Only the site's
admins (or a district admin) export, with a purpose; every export is audited as
``registration.exported`` with the purpose, the format and the people in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.auth.principal import Principal
from idsvc.core.errors import InvalidInput
from idsvc.registry import personal, statistics
from idsvc.registry.grants import grant_end
from idsvc.registry.models import Building, Grant, Person, Unit
from idsvc.registry.site_settings import parse

COLUMNS = (
    "name", "sex", "age", "household_province", "household_address", "occupation", "workplace", "building", "unit", "tenancy_from", "tenancy_until",
)
FORMATS = ("csv", "xlsx")


@dataclass(frozen=True)
class RegistrationRow:
    person_id: int
    values: dict[str, str | int | None]


def registration_rows(
    session: Session, principal: Principal, site_id: int, first: date, last: date, *, purpose: str, file_format: str, today: date | None = None
) -> list[RegistrationRow]:
    if not purpose.strip():
        raise InvalidInput("Say what the export is for (for example the police station's request).", code="purpose_required")
    if file_format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}.", code="invalid_input")
    (site,) = statistics.sites_for(session, principal, site_id)
    zone = ZoneInfo(site.timezone)
    start, stop = datetime.combine(first, time.min, zone), datetime.combine(last + timedelta(days=1), time.min, zone)
    today = today or datetime.now(zone).date()
    collected = set(parse(site.settings).registration.fields)
    stmt = (
        select(Grant, Person, Unit, Building)
        .join(Person, Person.id == Grant.person_id)
        .join(Unit, Unit.id == Grant.unit_id)
        .join(Building, Building.id == Unit.building_id)
        .where(Grant.site_id == site.id, Grant.valid_from < stop, Person.erased_at.is_(None))
        .order_by(Building.id, Unit.label, Grant.valid_from, Grant.id)
    )
    rows = []
    for grant, person, unit, building in session.execute(stmt):
        end = grant_end(grant)
        if end <= start or end <= grant.valid_from:  # over before the days, or revoked before it began
            continue
        record = personal.read(session, person)

        def field(name: str, value: str | int | None) -> str | int | None:
            return value if name in collected else None

        province = record.household_province
        rows.append(RegistrationRow(person.id, {
            "name": record.display_name,
            "sex": field("sex", record.sex.value if record.sex else None),
            "age": field("birth_date", personal.age_on(record.birth_date, today) if record.birth_date else None),
            "household_province": field("household_province", personal.PROVINCES.get(province, province) if province else None),
            "household_address": field("household_address", record.household_address),
            "occupation": field("occupation", record.occupation),
            "workplace": field("workplace", record.workplace),
            "building": building.name,
            "unit": unit.label,
            "tenancy_from": grant.valid_from.astimezone(zone).date().isoformat(),
            "tenancy_until": end.astimezone(zone).date().isoformat(),
        }))
    audit.append(session, audit.NewEvent(
        kind="registration.exported", actor=principal.actor, site_id=site.id, entity_type="site", entity_id=site.id,
        data={"purpose": purpose.strip(), "format": file_format, "from": first.isoformat(), "to": last.isoformat(), "rows": len(rows),
              "person_ids": sorted({r.person_id for r in rows})},
    ))
    return rows
