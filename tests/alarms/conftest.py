"""Alarm test helpers: a world with a sensor ingest device and sensors, and a notice recorder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from idsvc.alarms import sensors
from idsvc.alarms.models import SensorFamily, SensorKind
from idsvc.auth import service as keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR, Principal
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.registry import doors, schemas
from idsvc.registry.models import DeviceKind
from idsvc.core.bus import Notice
from tests.world import World, build_world


@dataclass
class Recorder:
    notices: list[Notice] = field(default_factory=list)

    def __call__(self, notice: Notice) -> None:
        # With Redis a node hears its own notices twice (locally, then from the channel): the
        # notices carry the alarm's state, so the second copy is recognised and dropped.
        if notice.get("kind") == "alarm" and notice not in self.notices:
            self.notices.append(notice)

    def events(self) -> list[tuple[str, str, int]]:
        return [(n["event"], n["alarm"]["type"], n["alarm"]["count"]) for n in self.notices]


@pytest.fixture
def recorder(ctx: AppContext) -> Iterator[Recorder]:
    rec = Recorder()
    unsubscribe = ctx.bus.subscribe(rec)
    yield rec
    unsubscribe()


@dataclass
class SensorWorld:
    world: World
    ingest: Principal  # the sensor ingest device of site a
    ids: dict[str, int]
    ingest_token: str


@pytest.fixture
def sensor_world(ctx: AppContext) -> SensorWorld:
    world = build_world(ctx)
    with ctx.db.session() as s:
        device = doors.create_device(s, OPERATOR, schemas.DeviceIn(site_id=world.ids["site_a"], code="sensor-ingest", name="Sensor ingest", kind=DeviceKind.bridge, door_ids=[]))
        token = keys.issue_key(s, OPERATOR, Role.device, label="ingest", device_id=device.id).token
        ids = {"ingest": device.id}
        for name, kind, unit in (("smoke-101", SensorKind.smoke, "unit1"), ("gas-102", SensorKind.gas, "unit2"), ("efm-b1", SensorKind.electrical_fire, None)):
            sensor = sensors.create(s, ctx.sealer, OPERATOR, sensors.NewSensor(
                site_id=world.ids["site_a"], building_id=world.ids["building_a"], unit_id=world.ids[unit] if unit else None, device_id=device.id,
                code=name, name=name, family=SensorFamily.zigbee2mqtt if kind is not SensorKind.electrical_fire else SensorFamily.tasmota, kind=kind))
            ids[name] = sensor.id
    return SensorWorld(world, Principal(role=Role.device, device_id=device.id, site_id=world.ids["site_a"]), ids, token)


_clock = [utcnow()]


def later(seconds: float = 1.0) -> datetime:
    """Strictly increasing reading times (the ingest's promise), starting when the tests were loaded."""
    _clock[0] += timedelta(seconds=seconds)
    return _clock[0]
