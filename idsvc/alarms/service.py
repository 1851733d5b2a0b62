"""The alarm lifecycle: raise (or repeat), hold conditions, acknowledge, clear; scoped, audited, announced.

- **Raise** is one ``INSERT ... ON CONFLICT`` against the partial unique index of active alarms:
  the first signal of a (source, type) creates the alarm, every later one (from any node, at the
  same instant or not) adds to its count and moves ``last_at``. Only the creation is audited; the
  count is the record of repeats.
- **Conditions** that must hold (gas above the limit for 30 s) or repeat (three readings) wait in
  ``alarm_conditions``; a normal reading drops them, the sweeper raises those that held. Both live
  in the database, so a restart neither forgets nor doubles them.
- **Acknowledge** (someone is on it) and **clear** (it is over) are separate: a condition that ends
  by itself (a sensor back online) clears its alarm, which stays unacknowledged until a person looks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, delete, false, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from idsvc.alarms import catalogue, notices
from idsvc.alarms.models import Alarm, AlarmCondition, Severity
from idsvc.audit import service as audit
from idsvc.auth import health_data
from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.bus import Bus
from idsvc.core.db import utcnow
from idsvc.core.errors import Forbidden, InvalidInput
from idsvc.core.times import rfc3339, rfc3339_or_none
from idsvc.registry.scope import not_visible, owned_unit_ids

SYSTEM = "system"  # the actor of what the service does by itself (sweeps, automatic clears)


@dataclass
class Signal:
    """Something that should be (or repeat) an alarm: where, what, when, and the detail to show."""

    source: str
    type: str
    site_id: int
    at: datetime
    building_id: int | None = None
    unit_id: int | None = None
    door_id: int | None = None
    device_id: int | None = None
    sensor_id: int | None = None
    severity: Severity | None = None  # None: the catalogue's severity for the type
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k not in ("at", "severity")}, "severity": self.severity.value if self.severity else None}

    @classmethod
    def from_json(cls, value: dict[str, Any], at: datetime) -> Signal:
        return cls(**{**value, "at": at, "severity": Severity(value["severity"]) if value.get("severity") else None})


def to_dict(alarm: Alarm) -> dict[str, Any]:
    """The alarm as the API returns it and as notices carry it."""
    return {
        "id": alarm.id,
        "source": alarm.source,
        "type": alarm.type,
        "severity": alarm.severity.value,
        "state": "active" if alarm.cleared_at is None else "cleared",
        "acknowledged": alarm.acknowledged_at is not None,
        "site_id": alarm.site_id,
        "building_id": alarm.building_id,
        "unit_id": alarm.unit_id,
        "door_id": alarm.door_id,
        "device_id": alarm.device_id,
        "sensor_id": alarm.sensor_id,
        "first_at": rfc3339(alarm.first_at),
        "last_at": rfc3339(alarm.last_at),
        "count": alarm.count,
        "data": alarm.data,
        "acknowledged_at": rfc3339_or_none(alarm.acknowledged_at),
        "acknowledged_by": alarm.acknowledged_by,
        "cleared_at": rfc3339_or_none(alarm.cleared_at),
        "cleared_by": alarm.cleared_by,
        "clear_reason": alarm.clear_reason,
    }


def view(alarm: Alarm, reader: Principal) -> dict[str, Any]:
    """The alarm as ``reader`` may see it: without a fever reading or who it was unless they may (auth/health_data.py)."""
    return health_data.shown(reader, to_dict(alarm), kind_field="type")


def _audit(session: Session, kind: str, actor: str, alarm: Alarm, **data: Any) -> None:
    audit.append(
        session,
        audit.NewEvent(
            kind=kind, actor=actor, at=utcnow(), site_id=alarm.site_id, unit_id=alarm.unit_id, door_id=alarm.door_id,
            entity_type="alarm", entity_id=alarm.id, data={"type": alarm.type, "severity": alarm.severity.value, "source": alarm.source, **data},
        ),
    )


def _reload(session: Session, alarm_id: int) -> Alarm:
    return session.execute(select(Alarm).where(Alarm.id == alarm_id).execution_options(populate_existing=True)).scalar_one()


def raise_alarm(session: Session, bus: Bus, signal: Signal, actor: str) -> tuple[Alarm, bool]:
    """Create the active alarm of (source, type), or count a repeat of it; returns (alarm, created)."""
    table = Alarm.__table__
    severity = signal.severity or catalogue.severity_of(signal.type)
    values = {
        "source": signal.source, "type": signal.type, "severity": severity.value, "site_id": signal.site_id,
        "building_id": signal.building_id, "unit_id": signal.unit_id, "door_id": signal.door_id, "device_id": signal.device_id,
        "sensor_id": signal.sensor_id, "first_at": signal.at, "last_at": signal.at, "count": 1, "data": signal.data,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(values)
    newer = stmt.excluded.last_at > table.c.last_at  # a backlog may bring an older repeat after a newer one
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.source, table.c.type],
        index_where=table.c.cleared_at.is_(None),
        set_={
            "count": table.c.count + 1,
            "last_at": case((newer, stmt.excluded.last_at), else_=table.c.last_at),
            "first_at": case((stmt.excluded.first_at < table.c.first_at, stmt.excluded.first_at), else_=table.c.first_at),
            "data": case((newer, stmt.excluded.data), else_=table.c.data),
        },
    ).returning(table.c.id, table.c.count)
    alarm_id, count = session.execute(stmt).one()
    alarm = _reload(session, alarm_id)
    created = count == 1
    if created:
        _audit(session, "alarm.raised", actor, alarm)
    notices.queue(session, bus, "raised" if created else "repeated", to_dict(alarm))
    return alarm, created


def observe(session: Session, bus: Bus, signal: Signal, actor: str, *, hold_s: float = 0.0, repeats: int = 1) -> Alarm | None:
    """A reading beyond its limit: raise at once, or once it has held ``hold_s`` and been seen ``repeats`` times."""
    if hold_s <= 0 and repeats <= 1:
        return raise_alarm(session, bus, signal, actor)[0]
    table = AlarmCondition.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(
        source=signal.source, type=signal.type, since=signal.at, last_at=signal.at, count=1, hold_s=hold_s, repeats=repeats, raised=False, signal=signal.to_json()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.source, table.c.type],
        set_={"count": table.c.count + 1, "last_at": stmt.excluded.last_at, "signal": stmt.excluded.signal, "hold_s": hold_s, "repeats": repeats},
    ).returning(table.c.id, table.c.since, table.c.count, table.c.raised)
    cond_id, since, count, raised = session.execute(stmt).one()
    if raised:
        return raise_alarm(session, bus, signal, actor)[0]  # it is an alarm already: this is a repeat
    if (signal.at - since).total_seconds() >= hold_s and count >= repeats and _claim(session, cond_id):
        return raise_alarm(session, bus, signal, actor)[0]
    return None


def _claim(session: Session, cond_id: int) -> bool:
    """Mark a condition raised; True for exactly one caller however many nodes try at once."""
    return session.execute(update(AlarmCondition).where(AlarmCondition.id == cond_id, AlarmCondition.raised == false()).values(raised=True)).rowcount == 1


def normal(session: Session, bus: Bus, source: str, types: Iterable[str], at: datetime, reason: str = "returned to normal") -> list[Alarm]:
    """The source reports normal again for these types: forget pending conditions and clear active alarms."""
    types = list(types)
    session.execute(delete(AlarmCondition).where(AlarmCondition.source == source, AlarmCondition.type.in_(types)))
    active = session.scalars(select(Alarm).where(Alarm.source == source, Alarm.type.in_(types), Alarm.cleared_at.is_(None)).with_for_update()).all()
    for alarm in active:
        _clear(session, bus, alarm, SYSTEM, reason, max(at, alarm.first_at))
    return list(active)


def sweep_conditions(session: Session, bus: Bus, now: datetime) -> list[Alarm]:
    """Raise the conditions that have held long enough without a normal reading (run every few seconds)."""
    raised = []
    for cond in session.scalars(select(AlarmCondition).where(AlarmCondition.raised == false())).all():
        if (now - cond.since).total_seconds() >= cond.hold_s and cond.count >= cond.repeats and _claim(session, cond.id):
            alarm, _ = raise_alarm(session, bus, Signal.from_json(cond.signal, now), SYSTEM)
            raised.append(alarm)
    return raised


def _clear(session: Session, bus: Bus, alarm: Alarm, actor: str, reason: str, at: datetime) -> None:
    alarm.cleared_at, alarm.cleared_by, alarm.clear_reason = at, actor, reason
    session.flush()
    _audit(session, "alarm.cleared", actor, alarm, reason=reason, count=alarm.count)
    notices.queue(session, bus, "cleared", to_dict(alarm))


# --- people: list, acknowledge, clear ------------------------------------------------------------

_READERS = (Role.district_admin, Role.site_admin, Role.owner)


def visible(session: Session, caller: Principal) -> ColumnElement[bool]:
    """The alarms this caller may see: all (district), their site's (site admin), their units' (owner)."""
    caller.require_role(*_READERS)
    if caller.is_district_admin:
        return true()
    if caller.role is Role.site_admin:
        return Alarm.site_id == (caller.site_id or -1)
    return Alarm.unit_id.in_(owned_unit_ids(session, caller) or [-1])


@dataclass
class AlarmFilter:
    state: str = "active"  # active, cleared, all
    acknowledged: bool | None = None
    site_id: int | None = None
    building_id: int | None = None
    unit_id: int | None = None
    door_id: int | None = None
    sensor_id: int | None = None
    types: Sequence[str] = ()
    severities: Sequence[Severity] = ()
    since: datetime | None = None  # last seen at or after
    before_id: int | None = None  # paging cursor: newest first


def query(session: Session, caller: Principal, flt: AlarmFilter, limit: int) -> list[Alarm]:
    stmt = select(Alarm).where(visible(session, caller))
    if flt.state == "active":
        stmt = stmt.where(Alarm.cleared_at.is_(None))
    elif flt.state == "cleared":
        stmt = stmt.where(Alarm.cleared_at.is_not(None))
    if flt.acknowledged is not None:
        stmt = stmt.where(Alarm.acknowledged_at.is_not(None) if flt.acknowledged else Alarm.acknowledged_at.is_(None))
    for column, value in ((Alarm.site_id, flt.site_id), (Alarm.building_id, flt.building_id), (Alarm.unit_id, flt.unit_id), (Alarm.door_id, flt.door_id), (Alarm.sensor_id, flt.sensor_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if flt.types:
        stmt = stmt.where(Alarm.type.in_(flt.types))
    if flt.severities:
        stmt = stmt.where(Alarm.severity.in_(flt.severities))
    if flt.since is not None:
        stmt = stmt.where(Alarm.last_at >= flt.since)
    if flt.before_id is not None:
        stmt = stmt.where(Alarm.id < flt.before_id)
    return list(session.scalars(stmt.order_by(Alarm.id.desc()).limit(limit)))


def summary(session: Session, caller: Principal, site_id: int | None = None) -> dict[str, Any]:
    """Counts of active alarms by severity and how many wait for acknowledgement (for screens and statistics)."""
    stmt = select(Alarm.severity, Alarm.acknowledged_at.is_(None)).where(visible(session, caller), Alarm.cleared_at.is_(None))
    if site_id is not None:
        stmt = stmt.where(Alarm.site_id == site_id)
    by_severity = {s.value: 0 for s in Severity}
    unacknowledged = 0
    for severity, unacked in session.execute(stmt):
        by_severity[severity.value] += 1
        unacknowledged += int(bool(unacked))
    return {"active": sum(by_severity.values()), "unacknowledged": unacknowledged, "by_severity": by_severity}


def get(session: Session, caller: Principal, alarm_id: int, *, lock: bool = False) -> Alarm:
    stmt = select(Alarm).where(Alarm.id == alarm_id, visible(session, caller))
    alarm = session.scalar(stmt.with_for_update() if lock else stmt)
    if alarm is None:
        raise not_visible("alarm", alarm_id)
    return alarm


def acknowledge(session: Session, bus: Bus, caller: Principal, alarm_id: int, note: str | None = None) -> Alarm:
    """Anyone who sees the alarm may acknowledge it; a second acknowledgement changes nothing."""
    alarm = get(session, caller, alarm_id, lock=True)
    if alarm.acknowledged_at is None:
        alarm.acknowledged_at, alarm.acknowledged_by = utcnow(), caller.actor
        session.flush()
        _audit(session, "alarm.acknowledged", caller.actor, alarm, note=note)
        notices.queue(session, bus, "acknowledged", to_dict(alarm))
    return alarm


def clear(session: Session, bus: Bus, caller: Principal, alarm_id: int, reason: str) -> Alarm:
    """Site staff close an alarm after checking on site; owners acknowledge but do not clear."""
    alarm = get(session, caller, alarm_id, lock=True)
    if not caller.administers_site(alarm.site_id):
        raise Forbidden("Clearing an alarm needs the site admin role for its site; owners may acknowledge it.", code="forbidden_role")
    if not reason.strip():
        raise InvalidInput("Say why the alarm is cleared.", code="reason_required")
    if alarm.cleared_at is None:
        _clear(session, bus, alarm, caller.actor, reason, utcnow())
    return alarm


def condition_rows(session: Session, source: str | None = None) -> list[AlarmCondition]:
    stmt = select(AlarmCondition)
    if source is not None:
        stmt = stmt.where(AlarmCondition.source == source)
    return list(session.scalars(stmt.order_by(AlarmCondition.id)))

