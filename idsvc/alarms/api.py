"""HTTP views of the alarm core: alarms (list, summary, live stream, acknowledge, clear), sensors,
emission data, and the device call that uploads sensor readings. Thin: the services check roles."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from idsvc.alarms import door_events, notices, sensors, service  # noqa: F401 - door_events hooks device uploads
from idsvc.alarms.hj212.stations import CRC_POLICIES
from idsvc.alarms.models import EmissionRecord, SensorFamily, SensorKind, Severity
from idsvc.auth import health_data
from idsvc.auth.deps import Caller, Ctx
from idsvc.auth.models import Role
from idsvc.core.bus import Notice
from idsvc.core.db import utcnow
from idsvc.core.errors import Forbidden, InvalidInput
from idsvc.core.limits import BATCH_BODY_BYTES, body_limit
from idsvc.core.times import rfc3339
from idsvc.core.validation import JsonObject, Name, Reason, RowId, ShortText, Timestamp
from idsvc.registry.scope import owned_unit_ids
from idsvc.registry.site_settings import EmissionLimitOverride

router = APIRouter(prefix="/v1", tags=["alarms"])
CREATED = {"status_code": status.HTTP_201_CREATED}
MAX_READINGS = 500
AlarmType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class AlarmQuery(BaseModel):
    state: Literal["active", "cleared", "all"] = "active"
    acknowledged: bool | None = None
    site_id: RowId | None = None
    building_id: RowId | None = None
    unit_id: RowId | None = None
    door_id: RowId | None = None
    sensor_id: RowId | None = None
    type: list[AlarmType] = Field(Query([], description="Alarm types (repeat the parameter for several)."))
    severity: list[Severity] = Field(Query([], description="Severities (repeat for several)."))
    since: Timestamp | None = Field(None, description="Last seen at or after this time.")
    before_id: RowId | None = Field(None, description="Paging cursor: the next_before_id of the previous page.")


@router.get("/alarms")
def list_alarms(ctx: Ctx, caller: Caller, q: Annotated[AlarmQuery, Depends()], limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """Newest first. District admins see every site, site admins theirs, owners their units' alarms."""
    flt = service.AlarmFilter(**q.model_dump(exclude={"type", "severity"}), types=q.type, severities=q.severity)
    with ctx.db.session() as s:
        rows = service.query(s, caller, flt, limit)
        return {"alarms": [service.view(a, caller) for a in rows], "next_before_id": rows[-1].id if len(rows) == limit else None}


@router.get("/alarms/summary")
def alarm_summary(ctx: Ctx, caller: Caller, site_id: RowId | None = None) -> dict[str, Any]:
    with ctx.db.session() as s:
        return service.summary(s, caller, site_id)


async def _owned_units(ctx: Ctx, caller: Caller) -> set[int]:
    """Checked before the stream opens, so tenants and devices get a 403, not an empty stream."""

    def units() -> set[int]:
        with ctx.db.session() as s:
            service.visible(s, caller)
            return set(owned_unit_ids(s, caller))

    return await run_in_threadpool(units)


@router.get("/alarms/stream", response_class=EventSourceResponse)
async def alarm_stream(ctx: Ctx, caller: Caller, owned: Annotated[set[int], Depends(_owned_units)]) -> AsyncIterator[ServerSentEvent]:
    """``event: alarm`` per notice the caller may see (raised, repeated, acknowledged, cleared), as it happens."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=1000)

    def may_see(alarm: dict[str, Any]) -> bool:
        if caller.is_district_admin:
            return True
        if caller.role is Role.site_admin:
            return alarm.get("site_id") == caller.site_id
        return alarm.get("unit_id") in owned

    def on_notice(notice: Notice) -> None:  # on the bus thread
        if notices.is_alarm_notice(notice) and may_see(notice["alarm"]):
            loop.call_soon_threadsafe(lambda: queue.full() or queue.put_nowait(notice))

    unsubscribe = ctx.bus.subscribe(on_notice)
    recent: deque[str] = deque(maxlen=256)  # with Redis this node hears its own notices twice
    try:
        yield ServerSentEvent(event="ready", data={"role": caller.role.value}, retry=1000)
        while True:
            notice = await queue.get()
            event_id = f"{notice['alarm']['id']}.{notice['alarm']['count']}.{notice['event']}"
            if event_id in recent:
                continue
            recent.append(event_id)
            yield ServerSentEvent(event="alarm", id=event_id, data=notice | {"alarm": health_data.shown(caller, notice["alarm"], kind_field="type")})
    finally:
        unsubscribe()


@router.get("/alarms/{alarm_id}")
def get_alarm(alarm_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.session() as s:
        return service.view(service.get(s, caller, alarm_id), caller)


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: ShortText | None = None


@router.post("/alarms/{alarm_id}/acknowledge")
def acknowledge_alarm(alarm_id: RowId, ctx: Ctx, caller: Caller, body: AcknowledgeIn | None = None) -> dict[str, Any]:
    with ctx.db.session() as s:
        return service.view(service.acknowledge(s, ctx.bus, caller, alarm_id, body.note if body else None), caller)


class ClearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


@router.post("/alarms/{alarm_id}/clear")
def clear_alarm(alarm_id: RowId, body: ClearIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.session() as s:
        return service.view(service.clear(s, ctx.bus, caller, alarm_id, body.reason), caller)


# --- sensors --------------------------------------------------------------------------------------

SensorCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}$", description="Zigbee2MQTT friendly name, Tasmota topic, or HJ 212 MN.")]


class SensorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: RowId
    building_id: RowId
    unit_id: RowId | None = None
    device_id: RowId | None = Field(None, description="The sensor ingest (a registry device) that reports for it; not for HJ 212 stations.")
    code: SensorCode
    name: Name
    family: SensorFamily
    kind: SensorKind
    silence_s: int | None = Field(None, ge=10, le=7 * 86400, description="Offline after this long without a word; default per family.")
    password: str | None = Field(None, min_length=1, max_length=9, pattern=r"^[\x21-\x7e]+$", description="HJ 212 stations: their PW.")
    settings: JsonObject = Field(default_factory=dict, description="HJ 212 stations: crc (strict, modbus_too, off), limits {code: {hour, day}}.")


def _check_station_settings(settings: dict[str, Any]) -> None:
    unknown = set(settings) - {"crc", "limits"}
    if unknown:
        raise InvalidInput(f"Unknown station settings: {', '.join(sorted(unknown))}.", code="invalid_settings")
    if settings.get("crc", "strict") not in CRC_POLICIES:
        raise InvalidInput(f"settings.crc must be one of {', '.join(CRC_POLICIES)}.", code="invalid_settings")
    limits = settings.get("limits", {})
    try:
        for value in (limits or {}).values():
            EmissionLimitOverride.model_validate(value)
    except (ValueError, AttributeError) as exc:
        raise InvalidInput(f"settings.limits: {exc}", code="invalid_settings") from None


@router.post("/sensors", **CREATED)
def create_sensor(body: SensorIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    _check_station_settings(body.settings)
    with ctx.db.session() as s:
        return sensors.to_dict(sensors.create(s, ctx.sealer, caller, sensors.NewSensor(**body.model_dump())))


@router.get("/sensors")
def list_sensors(ctx: Ctx, caller: Caller, site_id: RowId | None = None) -> list[dict[str, Any]]:
    with ctx.db.session() as s:
        return [sensors.to_dict(x) for x in sensors.listed(s, caller, site_id)]


@router.get("/sensors/{sensor_id}")
def get_sensor(sensor_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.session() as s:
        return sensors.to_dict(sensors.get(s, caller, sensor_id))


class SensorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: StrictBool


@router.patch("/sensors/{sensor_id}")
def update_sensor(sensor_id: RowId, body: SensorPatch, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.session() as s:
        return sensors.to_dict(sensors.set_active(s, caller, sensor_id, body.active))


@router.get("/sensors/{sensor_id}/emissions")
def list_emissions(
    sensor_id: RowId, ctx: Ctx, caller: Caller,
    cn: Annotated[Literal["2011", "2051", "2061", "2031"] | None, Query(description="2011 real-time, 2051 minute, 2061 hour, 2031 day")] = None,
    since: Timestamp | None = None, limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """A station's stored data, newest first."""
    with ctx.db.session() as s:
        sensor = sensors.get(s, caller, sensor_id)
        stmt = select(EmissionRecord).where(EmissionRecord.sensor_id == sensor.id)
        if cn:
            stmt = stmt.where(EmissionRecord.cn == cn)
        if since:
            stmt = stmt.where(EmissionRecord.data_time >= since)
        rows = s.scalars(stmt.order_by(EmissionRecord.data_time.desc(), EmissionRecord.id.desc()).limit(limit)).all()
        return {"records": [{"cn": r.cn, "data_time": rfc3339(r.data_time), "pollutant": r.pollutant, "values": r.values, "flag": r.flag} for r in rows]}


# --- the device call ------------------------------------------------------------------------------


class ReadingValues(BaseModel):
    """Normalised values (docs/sensors.md); unset = not in this message."""

    model_config = ConfigDict(extra="forbid")

    smoke: StrictBool | None = None
    gas: StrictBool | None = None
    carbon_monoxide: StrictBool | None = None
    water_leak: StrictBool | None = None
    tamper: StrictBool | None = None
    battery_low: StrictBool | None = None
    battery: float | None = Field(None, ge=0, le=100)
    linkquality: float | None = Field(None, ge=0, le=255)
    gas_value: float | None = Field(None, ge=0, le=1_000_000)
    residual_current_ma: float | None = Field(None, ge=0, le=1_000_000)
    line_temperature_c: float | None = Field(None, ge=-60, le=1000)


class ReadingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    sensor: SensorCode
    at: Timestamp
    online: StrictBool | None = Field(None, description="Availability / last will: true online, false offline.")
    values: ReadingValues = Field(default_factory=ReadingValues)


class ReadingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    readings: Annotated[list[ReadingIn], Field(min_length=1, max_length=MAX_READINGS)]


class ReadingsOut(BaseModel):
    stored: list[str]
    duplicates: list[str]
    rejected: dict[str, str]


@router.post("/device/sensor-heartbeat", tags=["device"])
def sensor_heartbeat(ctx: Ctx, caller: Caller) -> dict[str, str]:
    """A sensor ingest says it is alive (every 30 s): its sensors' silence is judged only while it is heard."""
    now = utcnow()
    with ctx.db.session() as s:
        if not sensors.heard_from(s, ctx.bus, caller, now):
            raise Forbidden("This device reports for no sensor; register sensors with it as their device_id.", code="not_a_sensor_ingest")
    return {"at": rfc3339(now)}


@router.post("/device/sensor-readings", tags=["device"])
@body_limit(BATCH_BODY_BYTES)
def upload_readings(body: ReadingsIn, ctx: Ctx, caller: Caller) -> ReadingsOut:
    """A sensor ingest's readings, in the answer shape of ``/v1/device/events`` (the same uploader sends both)."""
    readings = [sensors.Reading(r.event_id, r.sensor, r.at, r.online, r.values.model_dump(exclude_none=True)) for r in body.readings]
    with ctx.db.session() as s:
        result = sensors.ingest(s, ctx.bus, caller, readings)
    return ReadingsOut(stored=result.stored, duplicates=result.duplicates, rejected=result.rejected)
