"""The done-when cases on real parts: Mosquitto, the sensor ingest, and a service process.

Simulated Zigbee2MQTT and Tasmota devices publish on the machine's broker under a topic prefix of
their own; the ingest journals and uploads; the service raises alarms and its sweeper watches
held conditions and silence. Alarms are read and acted on over HTTP with each role's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from door_firmware_bridge.sensors.config import parse
from door_firmware_bridge.sensors.ingest import SensorIngest
from door_firmware_bridge.sensors.simulators import TasmotaSensorSim, ZigbeeSensorSim
from idsvc.alarms import sensors
from idsvc.alarms.models import SensorFamily, SensorKind
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.registry.models import Site
from tests.alarms.conftest import SensorWorld
from tests.bridge.conftest import BROKER_PORT, ServiceProcess, until


@pytest.fixture
def alarm_service(ctx: AppContext, tmp_path: Path) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(ctx, tmp_path)
    proc.env |= {"IDSVC_ALARM_SWEEP_S": "0.3"}
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def e2e(ctx: AppContext, sensor_world: SensorWorld) -> SensorWorld:
    """The sensor world plus a leak sensor that is offline after 2 s of silence, and a 2 s gas hold."""
    w = sensor_world.world
    with ctx.db.session() as s:
        leak = sensors.create(s, ctx.sealer, OPERATOR, sensors.NewSensor(site_id=w.ids["site_a"], building_id=w.ids["building_a"], unit_id=w.ids["unit1"],
                                                                         device_id=sensor_world.ids["ingest"], code="leak-101", name="Leak 101",
                                                                         family=SensorFamily.zigbee2mqtt, kind=SensorKind.water_leak, silence_s=2))
        sensor_world.ids["leak-101"] = leak.id
        site = s.get(Site, w.ids["site_a"])
        assert site is not None
        site.settings = {"alarms": {"gas_value": {"limit": 10, "hold_s": 2.0}}}
    return sensor_world


def _config(e2e: SensorWorld, service: ServiceProcess, tmp_path: Path, prefix: str) -> Any:
    return parse({
        "site": "village", "service": {"url": service.url, "device_key": e2e.ingest_token, "timeout_s": 3.0},
        "broker": {"host": "127.0.0.1", "port": BROKER_PORT, "client_id": f"ingest-{prefix}"},
        "journal": {"path": str(tmp_path / "sensors.db"), "upload_interval_s": 0.1},
        "zigbee2mqtt_base": f"{prefix}/zigbee2mqtt", "tasmota_prefix": f"{prefix}/tele", "heartbeat_s": 0.3,
        "sensors": [
            {"code": "smoke-101", "family": "zigbee2mqtt"}, {"code": "gas-102", "family": "zigbee2mqtt"}, {"code": "leak-101", "family": "zigbee2mqtt"},
            {"code": "efm-b1", "family": "tasmota", "topic": "efm_b1",
             "readings": {"residual_current_ma": ["ANALOG.A1"], "line_temperature_c": ["DS18B20-1.Temperature", "DS18B20-2.Temperature"]}},
        ],
    })


@asynccontextmanager
async def ingesting(cfg: Any) -> AsyncIterator[SensorIngest]:
    ingest = SensorIngest(cfg)
    task = asyncio.create_task(ingest.run())
    try:
        await asyncio.wait_for(ingest.connected.wait(), 10)
        yield ingest
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Api:
    def __init__(self, service: ServiceProcess, tokens: dict[str, str]) -> None:
        self.client = httpx.AsyncClient(base_url=service.url, timeout=5)
        self.tokens = tokens

    async def alarms(self, who: str = "admin_a", **params: Any) -> list[dict[str, Any]]:
        answer = await self.client.get("/v1/alarms", params=params, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        answer.raise_for_status()
        return answer.json()["alarms"]  # type: ignore[no-any-return]

    async def post(self, who: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"})


async def _wait_alarms(api: Api, predicate: Any, what: str, timeout: float = 10.0, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        found = await api.alarms(**params)
        return bool(predicate(found))

    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; alarms: {found}")
        await asyncio.sleep(0.1)
    return found


def _of(alarms: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [a for a in alarms if a["type"] == type_]


def test_smoke_is_one_critical_alarm_repeats_count_and_roles_act_on_it(e2e: SensorWorld, alarm_service: ServiceProcess, tmp_path: Path) -> None:
    prefix = f"t{secrets.token_hex(4)}"
    cfg = _config(e2e, alarm_service, tmp_path, prefix)

    async def scenario() -> None:
        api = Api(alarm_service, e2e.world.tokens)
        async with ingesting(cfg), ZigbeeSensorSim("smoke-101", f"{prefix}/zigbee2mqtt", port=BROKER_PORT, legacy=True) as smoke:
            await smoke.availability(True)
            await smoke.report(smoke=True)
            alarms = await _wait_alarms(api, lambda a: _of(a, "smoke"), "the smoke alarm")
            [alarm] = _of(alarms, "smoke")
            assert (alarm["severity"], alarm["count"], alarm["unit_id"], alarm["sensor_id"]) == ("critical", 1, e2e.world.ids["unit1"], e2e.ids["smoke-101"])
            assert alarm["data"]["battery"] == 97.0  # sent as the string "97" by the legacy device
            for _ in range(2):
                await smoke.report(smoke=True)
            alarms = await _wait_alarms(api, lambda a: _of(a, "smoke") and _of(a, "smoke")[0]["count"] == 3, "two repeats")
            assert len(_of(alarms, "smoke")) == 1 and _of(alarms, "smoke")[0]["id"] == alarm["id"]
            # The landlord of unit 1 sees it and acknowledges; another landlord does not see it.
            assert [a["id"] for a in await api.alarms("owner1", type="smoke")] == [alarm["id"]]
            assert await api.alarms("owner2", type="smoke") == []
            assert (await api.post("owner2", f"/v1/alarms/{alarm['id']}/acknowledge", {})).status_code == 404
            assert (await api.post("owner1", f"/v1/alarms/{alarm['id']}/acknowledge", {"note": "calling the tenant"})).json()["acknowledged"] is True
            assert (await api.post("owner1", f"/v1/alarms/{alarm['id']}/clear", {"reason": "ok"})).status_code == 403
            assert (await api.post("tenant1", f"/v1/alarms/{alarm['id']}/acknowledge", {})).status_code == 403
            cleared = (await api.post("admin_a", f"/v1/alarms/{alarm['id']}/clear", {"reason": "grid worker checked: cooking smoke"})).json()
            assert cleared["state"] == "cleared"
            assert _of(await api.alarms(), "smoke") == []
        await api.client.aclose()

    asyncio.run(scenario())


def test_gas_briefly_above_the_limit_raises_nothing_held_above_raises(e2e: SensorWorld, alarm_service: ServiceProcess, tmp_path: Path) -> None:
    prefix = f"t{secrets.token_hex(4)}"
    cfg = _config(e2e, alarm_service, tmp_path, prefix)

    async def scenario() -> None:
        api = Api(alarm_service, e2e.world.tokens)
        async with ingesting(cfg) as ingest, ZigbeeSensorSim("gas-102", f"{prefix}/zigbee2mqtt", port=BROKER_PORT) as gas:
            await gas.report(gas_value=25)  # above 10 %LEL ...
            await asyncio.sleep(0.8)
            await gas.report(gas_value=3)  # ... for less than the 2 s hold
            await until(lambda: len(ingest.journal.entries()) >= 2 and ingest.journal.counts().get("pending", 0) == 0, 10, "the readings to be uploaded")
            await asyncio.sleep(3.0)  # well past the hold: the sweeper has had many rounds
            assert _of(await api.alarms(state="all"), "gas_concentration_high") == []
            await gas.report(gas_value=30)  # now it stays high
            alarms = await _wait_alarms(api, lambda a: _of(a, "gas_concentration_high"), "the held gas alarm", timeout=10)
            [alarm] = _of(alarms, "gas_concentration_high")
            assert (alarm["severity"], alarm["data"]["value"], alarm["data"]["limit"]) == ("critical", 30.0, 10.0)
            assert (alarm_first := alarm["first_at"]) is not None
            await gas.report(gas_value=2)  # the gas is gone: the alarm clears by itself, unacknowledged
            cleared = await _wait_alarms(api, lambda a: _of(a, "gas_concentration_high"), "the gas alarm to clear", state="cleared")
            assert _of(cleared, "gas_concentration_high")[0]["first_at"] == alarm_first
            assert _of(cleared, "gas_concentration_high")[0]["acknowledged"] is False
        await api.client.aclose()

    asyncio.run(scenario())


def test_silence_and_last_will_raise_sensor_offline(e2e: SensorWorld, alarm_service: ServiceProcess, tmp_path: Path) -> None:
    prefix = f"t{secrets.token_hex(4)}"
    cfg = _config(e2e, alarm_service, tmp_path, prefix)

    async def scenario() -> None:
        api = Api(alarm_service, e2e.world.tokens)
        async with ingesting(cfg):
            async with ZigbeeSensorSim("leak-101", f"{prefix}/zigbee2mqtt", port=BROKER_PORT) as leak:
                await leak.report(water_leak=False)
            # Nothing more from it: after its 2 s silence limit it is offline.
            alarms = await _wait_alarms(api, lambda a: [x for x in _of(a, "sensor_offline") if x["sensor_id"] == e2e.ids["leak-101"]], "the silent sensor", timeout=15)
            [offline] = [x for x in _of(alarms, "sensor_offline") if x["sensor_id"] == e2e.ids["leak-101"]]
            assert (offline["severity"], offline["data"]["reason"]) == ("major", "silent")
            async with ZigbeeSensorSim("leak-101", f"{prefix}/zigbee2mqtt", port=BROKER_PORT) as leak:
                await leak.report(water_leak=False)  # it speaks again: the alarm clears by itself
                await _wait_alarms(api, lambda a: [x for x in a if x["id"] == offline["id"]], "the offline alarm to clear", state="cleared")
            # An electrical-fire monitor on Tasmota: readings above the line limit, then its last will.
            async with TasmotaSensorSim("efm_b1", f"{prefix}/tele", port=BROKER_PORT) as efm:
                await efm.sensor({"ANALOG": {"A1": 45}, "DS18B20-1": {"Temperature": 41.5}, "DS18B20-2": {"Temperature": 82.0}})
                alarms = await _wait_alarms(api, lambda a: _of(a, "line_temperature_high"), "the hot line")
                assert _of(alarms, "residual_current_high") == []
                assert _of(alarms, "line_temperature_high")[0]["data"]["value"] == 82.0
            # Leaving the block publishes Offline on its LWT (as the broker would on a lost link).
            await _wait_alarms(api, lambda a: [x for x in _of(a, "sensor_offline") if x["sensor_id"] == e2e.ids["efm-b1"] and x["data"]["reason"] == "offline"],
                               "the monitor's last will")
        await api.client.aclose()

    asyncio.run(scenario())
