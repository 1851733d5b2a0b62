"""Sensors: where they are, who reports for them, what their readings mean, and when they went silent.

A site's sensor ingest (``door-bridge sensors run``, a registry device) uploads normalised readings
to ``POST /v1/device/sensor-readings``; each reading updates the sensor's last-seen time and is
turned into alarms by :mod:`idsvc.alarms.rules`. The ingest stamps each sensor's readings with
strictly increasing times, so a reading at or before the sensor's last one is a re-sent duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from idsvc.alarms import rules, service
from idsvc.alarms.models import Sensor, SensorFamily, SensorGateway, SensorKind
from idsvc.audit import service as audit
from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.bus import Bus
from idsvc.core.db import utcnow
from idsvc.core.errors import Conflict, InvalidInput
from idsvc.core.sealing import Sealer
from idsvc.core.times import rfc3339_or_none
from idsvc.registry.models import Building, Device, Site, Unit
from idsvc.registry.scope import not_visible, owned_unit_ids

# How long a sensor may say nothing before it is offline, unless set per sensor. Zigbee battery
# sensors check in at least hourly; Tasmota sends tele every 300 s by default; HJ 212 stations send
# minute data at intervals of at most 30 min.
DEFAULT_SILENCE_S = {SensorFamily.zigbee2mqtt: 7200, SensorFamily.tasmota: 900, SensorFamily.hj212: 3600}
# A sensor ingest heartbeats every 30 s (door-bridge sensors: heartbeat_s); six missed is offline.
GATEWAY_SILENCE_S = 180


@dataclass
class NewSensor:
    site_id: int
    building_id: int
    code: str
    name: str
    family: SensorFamily
    kind: SensorKind
    unit_id: int | None = None
    device_id: int | None = None
    silence_s: int | None = None
    password: str | None = None  # HJ 212 stations only
    settings: dict[str, Any] = field(default_factory=dict)


def password_aad(sensor_id: int) -> str:
    return f"sensor:{sensor_id}:hj212-password"


def resealed(sealer: Sealer, sensor: Sensor) -> dict[str, bytes]:
    """The station password re-sealed under the current master key (idsvc keys rotate)."""
    aad = password_aad(sensor.id)
    return {"sealed_password": sealer.seal(sealer.open(sensor.sealed_password or b"", aad), aad)}


def create(session: Session, sealer: Sealer, caller: Principal, new: NewSensor) -> Sensor:
    caller.require_site_admin(new.site_id)
    building = session.get(Building, new.building_id)
    if building is None or building.site_id != new.site_id:
        raise InvalidInput(f"Building {new.building_id} is not in site {new.site_id}.", code="building_not_in_site")
    if new.unit_id is not None:
        unit = session.get(Unit, new.unit_id)
        if unit is None or unit.building_id != new.building_id:
            raise InvalidInput(f"Unit {new.unit_id} is not in building {new.building_id}.", code="unit_not_in_building")
    hj212 = new.family is SensorFamily.hj212
    if hj212 != (new.kind is SensorKind.emission_station):
        raise InvalidInput("HJ 212 stations are of kind emission_station, and only they are.", code="sensor_kind_mismatch")
    if hj212 and not new.password:
        raise InvalidInput("An HJ 212 station needs its access password (PW).", code="password_required")
    if not hj212:
        if new.device_id is None:
            raise InvalidInput("Name the sensor ingest device that reports for this sensor (device_id).", code="device_required")
        device = session.get(Device, new.device_id)
        if device is None or device.site_id != new.site_id:
            raise InvalidInput(f"Device {new.device_id} is not in site {new.site_id}.", code="device_not_in_site")
    if session.scalar(select(Sensor.id).where(Sensor.site_id == new.site_id, Sensor.code == new.code)) is not None:
        raise Conflict(f"Site {new.site_id} already has a sensor with code {new.code!r}.", code="sensor_code_taken")
    if hj212 and session.scalar(select(Sensor.id).where(Sensor.family == SensorFamily.hj212, Sensor.code == new.code)) is not None:
        raise Conflict(f"A station with MN {new.code!r} is registered already (MN is unique across sites).", code="sensor_code_taken")
    sensor = Sensor(
        site_id=new.site_id, building_id=new.building_id, unit_id=new.unit_id, device_id=None if hj212 else new.device_id, code=new.code,
        name=new.name, family=new.family, kind=new.kind, silence_s=new.silence_s or DEFAULT_SILENCE_S[new.family], settings=new.settings,
    )
    session.add(sensor)
    session.flush()
    if hj212:
        sensor.sealed_password = sealer.seal((new.password or "").encode(), password_aad(sensor.id))
    audit.append(session, audit.NewEvent(kind="sensor.created", actor=caller.actor, site_id=sensor.site_id, unit_id=sensor.unit_id, entity_type="sensor", entity_id=sensor.id,
                                         data={"code": sensor.code, "family": sensor.family.value, "kind": sensor.kind.value}))
    return sensor


def visible(session: Session, caller: Principal) -> Any:
    caller.require_role(Role.district_admin, Role.site_admin, Role.owner)
    if caller.is_district_admin:
        return True
    if caller.role is Role.site_admin:
        return Sensor.site_id == (caller.site_id or -1)
    return Sensor.unit_id.in_(owned_unit_ids(session, caller) or [-1])


def listed(session: Session, caller: Principal, site_id: int | None = None) -> list[Sensor]:
    stmt = select(Sensor).where(visible(session, caller))
    if site_id is not None:
        stmt = stmt.where(Sensor.site_id == site_id)
    return list(session.scalars(stmt.order_by(Sensor.id)))


def get(session: Session, caller: Principal, sensor_id: int) -> Sensor:
    sensor = session.scalar(select(Sensor).where(Sensor.id == sensor_id, visible(session, caller)))
    if sensor is None:
        raise not_visible("sensor", sensor_id)
    return sensor


def set_active(session: Session, caller: Principal, sensor_id: int, active: bool) -> Sensor:
    """Take a sensor out of service (removed, under repair) or back: an inactive sensor raises nothing."""
    sensor = get(session, caller, sensor_id)
    caller.require_site_admin(sensor.site_id)
    if sensor.active != active:
        sensor.active = active
        sensor.online = None if active else sensor.online
        audit.append(session, audit.NewEvent(kind="sensor.activated" if active else "sensor.deactivated", actor=caller.actor, site_id=sensor.site_id, unit_id=sensor.unit_id,
                                             entity_type="sensor", entity_id=sensor.id, data={"code": sensor.code}))
    return sensor


def to_dict(sensor: Sensor) -> dict[str, Any]:
    return {
        "id": sensor.id, "site_id": sensor.site_id, "building_id": sensor.building_id, "unit_id": sensor.unit_id, "device_id": sensor.device_id,
        "code": sensor.code, "name": sensor.name, "family": sensor.family.value, "kind": sensor.kind.value, "silence_s": sensor.silence_s,
        "active": sensor.active, "online": sensor.online, "last_seen_at": rfc3339_or_none(sensor.last_seen_at),
        "settings": sensor.settings,
    }


def signal(sensor: Sensor, alarm_type: str, at: datetime, source: str | None = None, **data: Any) -> service.Signal:
    return service.Signal(source=source or f"sensor:{sensor.id}", type=alarm_type, site_id=sensor.site_id, at=at, building_id=sensor.building_id,
                          unit_id=sensor.unit_id, sensor_id=sensor.id, data={"sensor": sensor.code, **data})


# --- readings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    event_id: str
    sensor: str  # the sensor's code
    at: datetime
    online: bool | None  # availability / last will; None = not said
    values: dict[str, Any]  # normalised keys: smoke, gas, ..., gas_value, residual_current_ma, ...


@dataclass
class ReadingsResult:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


def heard_from(session: Session, bus: Bus, caller: Principal, now: datetime) -> bool:
    """A sensor ingest spoke (readings or a heartbeat): note it, and end its offline alarm.
    False for a device that reports for no sensor (it is no ingest: nothing to note)."""
    caller.require_role(Role.device)
    device = session.get(Device, caller.device_id)
    if device is None or session.scalar(select(Sensor.id).where(Sensor.device_id == device.id).limit(1)) is None:
        return False
    gateway = session.get(SensorGateway, device.id, with_for_update=True)
    if gateway is None:
        session.add(SensorGateway(device_id=device.id, site_id=device.site_id, last_contact_at=now, online=True))
        return True
    gateway.last_contact_at = max(now, gateway.last_contact_at)
    if not gateway.online:
        gateway.online = True
        service.normal(session, bus, f"device:{device.id}", ["sensor_gateway_offline"], now, reason="heard again")
    return True


def ingest(session: Session, bus: Bus, caller: Principal, readings: list[Reading]) -> ReadingsResult:
    """Apply a device's batch of readings in order; every event id lands in exactly one list."""
    caller.require_role(Role.device)
    heard_from(session, bus, caller, utcnow())
    result = ReadingsResult()
    device = session.get(Device, caller.device_id)
    codes = {r.sensor for r in readings}
    sensors = {s.code: s for s in session.scalars(select(Sensor).where(Sensor.site_id == (device.site_id if device else -1), Sensor.code.in_(codes)).with_for_update())}
    site = session.get(Site, device.site_id) if device else None
    limits = rules.thresholds(site.settings if site else {})
    actor = caller.actor
    for reading in sorted(readings, key=lambda r: r.at):
        sensor = sensors.get(reading.sensor)
        if sensor is None or sensor.device_id != caller.device_id:
            result.rejected[reading.event_id] = "sensor_not_of_device"
        elif sensor.last_seen_at is not None and reading.at <= sensor.last_seen_at:
            result.duplicates.append(reading.event_id)
        else:
            sensor.last_seen_at = reading.at
            if sensor.active:
                _apply(session, bus, sensor, reading, limits, actor)
            result.stored.append(reading.event_id)
    return result


def _apply(session: Session, bus: Bus, sensor: Sensor, reading: Reading, limits: dict[str, rules.Threshold], actor: str) -> None:
    source = f"sensor:{sensor.id}"
    # A reading is a sign of life too (a device may report before its availability message).
    online = reading.online if reading.online is not None else (True if reading.values else None)
    if online is not None and online != sensor.online:
        sensor.online = online
        if online:
            service.normal(session, bus, source, ["sensor_offline"], reading.at, reason="back online")
        else:
            service.raise_alarm(session, bus, signal(sensor, "sensor_offline", reading.at, reason="offline"), actor)
    context = {k: reading.values[k] for k in ("battery", "linkquality") if reading.values.get(k) is not None}
    for key, alarm_type in rules.BOOLEAN_ALARMS.items():
        value = reading.values.get(key)
        if value is True:
            service.raise_alarm(session, bus, signal(sensor, alarm_type, reading.at, **context), actor)
        elif value is False:
            service.normal(session, bus, source, [alarm_type], reading.at)
    for key, threshold in limits.items():
        value = reading.values.get(key)
        if value is None:
            continue
        if value >= threshold.limit:
            detail = {"value": value, "limit": threshold.limit, "unit": threshold.unit, **context}
            service.observe(session, bus, signal(sensor, threshold.alarm_type, reading.at, **detail), actor, hold_s=threshold.hold_s, repeats=threshold.repeats)
        else:
            service.normal(session, bus, source, [threshold.alarm_type], reading.at)


def _sweep_gateways(session: Session, bus: Bus, now: datetime) -> dict[int, SensorGateway]:
    gateways = {g.device_id: g for g in session.scalars(select(SensorGateway))}
    for gateway in gateways.values():
        silent = now - gateway.last_contact_at >= timedelta(seconds=GATEWAY_SILENCE_S)
        if gateway.online and silent:
            claimed = session.execute(
                update(SensorGateway).where(SensorGateway.device_id == gateway.device_id, SensorGateway.online.is_(True), SensorGateway.last_contact_at == gateway.last_contact_at).values(online=False)
            ).rowcount
            if claimed == 1:
                session.refresh(gateway)
                signal = service.Signal(source=f"device:{gateway.device_id}", type="sensor_gateway_offline", site_id=gateway.site_id, at=now, device_id=gateway.device_id,
                                        data={"silent_s": int((now - gateway.last_contact_at).total_seconds()), "silence_s": GATEWAY_SILENCE_S})
                service.raise_alarm(session, bus, signal, service.SYSTEM)
    return gateways


def sweep_silent(session: Session, bus: Bus, now: datetime) -> list[Sensor]:
    """Sensors that said nothing for their silence limit go offline (once: the update is the claim).

    A sensor reported by an ingest is judged only on what that ingest has said: it is silent when the
    ingest was heard after the sensor's silence limit passed (a sensor of an ingest never heard, or
    gone quiet, is the ingest's alarm, not its own)."""
    gateways = _sweep_gateways(session, bus, now)
    gone = []
    candidates = session.scalars(select(Sensor).where(Sensor.active.is_(True), or_(Sensor.online.is_(None), Sensor.online.is_(True)))).all()
    for sensor in candidates:
        last = sensor.last_seen_at or sensor.created_at
        if now - last < timedelta(seconds=sensor.silence_s):
            continue
        if sensor.device_id is not None:
            gateway = gateways.get(sensor.device_id)
            if gateway is None or not gateway.online or gateway.last_contact_at < last + timedelta(seconds=sensor.silence_s):
                continue
        claimed = session.execute(
            update(Sensor).where(Sensor.id == sensor.id, or_(Sensor.online.is_(None), Sensor.online.is_(True)), Sensor.last_seen_at.is_(sensor.last_seen_at) if sensor.last_seen_at is None else Sensor.last_seen_at == sensor.last_seen_at)
            .values(online=False)
        ).rowcount
        if claimed == 1:
            session.refresh(sensor)
            silent_s = int((now - last).total_seconds())
            service.raise_alarm(session, bus, signal(sensor, "sensor_offline", now, reason="silent", silent_s=silent_s, silence_s=sensor.silence_s), service.SYSTEM)
            gone.append(sensor)
    return gone
