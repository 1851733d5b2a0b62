"""What the staff screen shows of one site: counters, every door with its state and place, alarms.

Each read goes through the domain's own scope rule (``sites.get_site`` + ``require_site_admin``,
``alarms.service.visible``, ``doors.list_doors``), so the screen shows exactly what the caller's
key could read through the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.orm import Session

from idsvc.alarms import service as alarms
from idsvc.alarms.models import Alarm
from idsvc.audit.models import AuditEvent
from idsvc.auth.principal import Principal
from idsvc.console import plan
from idsvc.core.db import utcnow
from idsvc.registry import doors as door_registry
from idsvc.registry import site_plans, sites
from idsvc.registry.models import Building, Door, Grant, Site, Status, Unit, device_doors
from idsvc.registry.scope import not_visible

# Active alarm types that give a door its colour, strongest first.
FORCED_TYPES = ("door_forced", "relock_overdue", "relock_failed")
OFFLINE_TYPES = ("device_offline",)
OPEN_TYPES = ("door_held_open", "door_open_at_start")
DOOR_STATES = ("forced", "alarm", "offline", "open", "locked")


@dataclass
class DoorView:
    id: int
    code: str
    name: str
    kind: str
    state: str
    x: float
    y: float

    def to_json(self) -> dict[str, object]:
        return self.__dict__.copy()


def screen_site(session: Session, caller: Principal, site_id: int | None) -> Site:
    """The site the screen is for: the caller's own, or the one a district admin chose (default: the first)."""
    if site_id is None:
        listed = sites.list_sites(session, caller)
        site_id = caller.site_id if caller.site_id is not None else (listed[0].id if listed else None)
        if site_id is None:
            caller.require_district_admin()
            raise not_visible("site", 0)
    site = sites.get_site(session, caller, site_id)
    caller.require_site_admin(site.id)
    return site


def start_of_today(site: Site) -> datetime:
    zone = ZoneInfo(site.timezone)
    return datetime.combine(datetime.now(zone).date(), time(0), tzinfo=zone)


def _active_alarms(session: Session, caller: Principal, site_id: int) -> list[Alarm]:
    stmt = select(Alarm).where(alarms.visible(session, caller), Alarm.site_id == site_id, Alarm.cleared_at.is_(None))
    return list(session.scalars(stmt.order_by(Alarm.id.desc())))


def counters(session: Session, caller: Principal, site: Site) -> dict[str, int]:
    now = utcnow()
    decisions = select(func.count()).where(AuditEvent.kind == "decision", AuditEvent.site_id == site.id, AuditEvent.at >= start_of_today(site))
    allowed = AuditEvent.data["allow"].as_boolean()
    active = _active_alarms(session, caller, site.id)
    living = (Grant.site_id == site.id, Grant.unit_id.is_not(None), Grant.status == Status.active, Grant.valid_from <= now, Grant.valid_until > now)
    return {
        "entries_today": session.scalar(decisions.where(allowed.is_(True))) or 0,
        "denials_today": session.scalar(decisions.where(allowed.is_not(True))) or 0,
        "fever_alarms": sum(1 for a in active if a.type == "fever_detected"),
        "forced_doors": len({a.door_id for a in active if a.type in FORCED_TYPES}),
        "offline_devices": len({a.device_id for a in active if a.type in OFFLINE_TYPES}),
        "occupied_units": session.scalar(select(func.count(distinct(Grant.unit_id))).where(*living)) or 0,
        "residents": session.scalar(select(func.count(distinct(Grant.person_id))).where(*living)) or 0,
        "units": session.scalar(select(func.count()).select_from(Unit).where(Unit.site_id == site.id)) or 0,
        "active_alarms": len(active),
    }


def door_state(door: Door, active: list[Alarm], devices: set[int], offline_devices: set[int]) -> str:
    types = {a.type for a in active if a.door_id == door.id}
    if types & set(FORCED_TYPES):
        return "forced"
    if types - set(OPEN_TYPES) - set(OFFLINE_TYPES):
        return "alarm"
    if door.status is not Status.active or types & set(OFFLINE_TYPES) or (devices and devices <= offline_devices):
        return "offline"
    if types & set(OPEN_TYPES):
        return "open"
    return "locked"


def door_views(session: Session, caller: Principal, site: Site) -> list[DoorView]:
    doors = door_registry.list_doors(session, caller, site.id)
    buildings = list(session.scalars(select(Building).where(Building.site_id == site.id)))
    placed = site_plans.get(session, caller, site.id)
    positions = plan.door_positions(buildings, doors) | {int(k): (v[0], v[1]) for k, v in ((placed.door_positions if placed else None) or {}).items()}
    active = _active_alarms(session, caller, site.id)
    offline = {a.device_id for a in active if a.type in OFFLINE_TYPES and a.device_id is not None}
    devices: dict[int, set[int]] = {}
    for door_id, device_id in session.execute(select(device_doors.c.door_id, device_doors.c.device_id).where(device_doors.c.door_id.in_([d.id for d in doors]))):
        devices.setdefault(door_id, set()).add(device_id)
    return [DoorView(d.id, d.code, d.name, d.kind.value, door_state(d, active, devices.get(d.id, set()), offline), *positions[d.id]) for d in doors]


def needing_attention(doors: list[DoorView], limit: int = 100) -> list[DoorView]:
    """The screen's door table: forced, alarm, offline and open doors first, at most ``limit`` rows
    (a site of 2,000 doors would otherwise make the screen's page ten times heavier)."""
    return sorted(doors, key=lambda d: (DOOR_STATES.index(d.state), d.id))[:limit]


def active_alarms(session: Session, caller: Principal, site: Site, limit: int = 50) -> list[Alarm]:
    return _active_alarms(session, caller, site.id)[:limit]


def door_event() -> ColumnElement[bool]:
    """What the live stream shows: door decisions and the events devices upload (not registry changes such as device.created)."""
    return (AuditEvent.kind == "decision") | (AuditEvent.entity_type == "device_event")


def recent_events(session: Session, site: Site, limit: int = 30) -> list[AuditEvent]:
    """The latest door events of the site (decisions and device events), newest first, for the stream's start.
    By time, not sequence: the (site, time) index answers it however long the trail is."""
    stmt = select(AuditEvent).where(AuditEvent.site_id == site.id, door_event())
    return list(session.scalars(stmt.order_by(AuditEvent.at.desc(), AuditEvent.seq.desc()).limit(limit)))


def door_history(session: Session, door: Door, limit: int = 50) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.door_id == door.id).order_by(AuditEvent.at.desc(), AuditEvent.seq.desc()).limit(limit)))


@dataclass(frozen=True)
class StreamItem:
    """One line of the live stream (also what /console/events sends, as JSON)."""

    seq: int
    at: datetime
    kind: str
    door_id: int | None
    door_name: str
    outcome: str  # allow, deny (decisions), device (a device's own event)
    reasons: list[str]
    method: str | None

    def to_json(self) -> dict[str, object]:
        return {**self.__dict__, "at": self.at.isoformat()}


def stream_item(event: AuditEvent, door_names: dict[int, str]) -> StreamItem:
    data = event.data or {}
    outcome = ("allow" if data.get("allow") else "deny") if event.kind == "decision" else "device"
    name = door_names.get(event.door_id, str(event.door_id or "")) if event.door_id is not None else ""
    return StreamItem(event.seq, event.at, event.kind, event.door_id, name, outcome, list(data.get("reasons") or []), data.get("method"))


def unit_entries(session: Session, unit: Unit, limit: int = 30) -> list[StreamItem]:
    """The latest door events at a unit's own doors (for its landlord: no names, door and outcome only)."""
    names = {d.id: d.name for d in session.scalars(select(Door).where(Door.unit_id == unit.id))}
    stmt = select(AuditEvent).where(AuditEvent.unit_id == unit.id, door_event()).order_by(AuditEvent.at.desc(), AuditEvent.seq.desc()).limit(limit)
    return [stream_item(e, names) for e in session.scalars(stmt)]
