"""Sensor readings and silence in process: duplicates, foreign sensors, thresholds, the ingest's heartbeat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from idsvc.alarms import sensors
from idsvc.alarms.models import Alarm, Sensor, SensorGateway
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from tests.alarms.conftest import SensorWorld, later


def _upload(client: TestClient, sw: SensorWorld, *readings: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/device/sensor-readings", headers={"Authorization": f"Bearer {sw.ingest_token}"}, json={"readings": list(readings)})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _reading(n: int, sensor: str, at: Any = None, **values: Any) -> dict[str, Any]:
    return {"event_id": f"reading-{n:04d}", "sensor": sensor, "at": (at or later()).isoformat(), "values": values}


def _active(ctx: AppContext) -> list[tuple[str, str, int]]:
    with ctx.db.session() as s:
        return [(a.type, a.source, a.count) for a in s.scalars(select(Alarm).where(Alarm.cleared_at.is_(None)).order_by(Alarm.id))]


def test_readings_raise_repeat_clear_and_resends_are_duplicates(client: TestClient, ctx: AppContext, sensor_world: SensorWorld) -> None:
    smoke = f"sensor:{sensor_world.ids['smoke-101']}"
    first = _reading(1, "smoke-101", smoke=True, battery=90)
    assert _upload(client, sensor_world, first, _reading(2, "smoke-101", smoke=True))["stored"] == ["reading-0001", "reading-0002"]
    again = _upload(client, sensor_world, first, _reading(3, "no-such-sensor", smoke=True))
    assert (again["duplicates"], again["rejected"]) == (["reading-0001"], {"reading-0003": "sensor_not_of_device"})
    assert _active(ctx) == [("smoke", smoke, 2)]
    _upload(client, sensor_world, _reading(4, "smoke-101", smoke=False))
    assert _active(ctx) == []
    bad = client.post("/v1/device/sensor-readings", headers={"Authorization": f"Bearer {sensor_world.ingest_token}"},
                      json={"readings": [_reading(5, "smoke-101", smoke="yes")]})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"


def test_thresholds_follow_the_site_settings(client: TestClient, ctx: AppContext, sensor_world: SensorWorld) -> None:
    efm = f"sensor:{sensor_world.ids['efm-b1']}"
    _upload(client, sensor_world, _reading(1, "efm-b1", residual_current_ma=299, line_temperature_c=65))
    assert _active(ctx) == []
    _upload(client, sensor_world, _reading(2, "efm-b1", residual_current_ma=300))
    assert _active(ctx) == [("residual_current_high", efm, 1)]
    w = sensor_world.world
    client.patch(f"/v1/sites/{w.ids['site_a']}", headers=w.auth("admin_a"), json={"settings": {"alarms": {"residual_current_ma": {"limit": 500}, "line_temperature_c": {"limit": 60, "repeats": 2}}}})
    _upload(client, sensor_world, _reading(3, "efm-b1", residual_current_ma=400, line_temperature_c=65))
    assert _active(ctx) == []  # 400 mA is now within the limit; 65 C needs a second reading
    _upload(client, sensor_world, _reading(4, "efm-b1", line_temperature_c=66))
    assert _active(ctx) == [("line_temperature_high", efm, 1)]


def test_silence_counts_only_while_the_ingest_is_heard(client: TestClient, ctx: AppContext, sensor_world: SensorWorld) -> None:
    t0 = utcnow()
    ingest = sensor_world.ids["ingest"]
    _upload(client, sensor_world, _reading(1, "smoke-101", at=t0 - timedelta(seconds=1), smoke=False), _reading(2, "gas-102", at=t0 - timedelta(seconds=1), gas=False),
            _reading(3, "efm-b1", at=t0 - timedelta(seconds=1), residual_current_ma=10))
    with ctx.db.session() as s:
        for sensor in s.scalars(select(Sensor)):
            sensor.silence_s = 600 if sensor.code != "smoke-101" else 60
    # Two minutes on, the ingest still heartbeats: smoke-101 (60 s limit) is silent, the others not yet.
    with ctx.db.session() as s:
        s.get(SensorGateway, ingest).last_contact_at = t0 + timedelta(seconds=110)  # type: ignore[union-attr]
    with ctx.db.session() as s:
        gone = sensors.sweep_silent(s, ctx.bus, t0 + timedelta(seconds=120))
    assert [x.code for x in gone] == ["smoke-101"]
    # Then the ingest falls silent: one gateway alarm, and no sensor is blamed for the ingest's silence.
    with ctx.db.session() as s:
        assert sensors.sweep_silent(s, ctx.bus, t0 + timedelta(seconds=110 + 180 + 900)) == []
    assert [(t, src) for t, src, _ in _active(ctx)] == [("sensor_offline", f"sensor:{sensor_world.ids['smoke-101']}"), ("sensor_gateway_offline", f"device:{ingest}")]
    heartbeat = client.post("/v1/device/sensor-heartbeat", headers={"Authorization": f"Bearer {sensor_world.ingest_token}"})
    assert heartbeat.status_code == 200
    assert [t for t, _, _ in _active(ctx)] == ["sensor_offline"]
    assert client.post("/v1/device/sensor-heartbeat", headers=sensor_world.world.auth("admin_a")).status_code == 403
