"""Nuki- and Tasmota-style devices through the MQTT adapter's profiles, on the real broker."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from door_firmware_bridge.adapters.mqtt import tasmota_pulse_time
from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.model import Decision
from door_firmware_bridge.simulators.vendors import VendorSim
from tests.bridge.conftest import BROKER_PORT, Site, bridge_config, running, until

ALLOW = Decision(True, (), "online", "qr")


def test_tasmota_relay_pulse_is_confirmed_by_its_power_state(site: Site, tmp_path: Path) -> None:
    topic = f"relay_{secrets.token_hex(3)}"
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9", flat={"profile": "tasmota", "device_topic": topic, "pulse_s": 2})
    door = cfg.doors[0]

    async def scenario() -> None:
        relay = VendorSim("tasmota", topic, port=BROKER_PORT)
        task = asyncio.create_task(relay.run())
        await asyncio.wait_for(relay.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            outcome = await bridge.supervisor.pulse(door, ALLOW)
            assert outcome.status == "executed" and outcome.lock_state == "unlocked"
            assert relay.commands == ["PulseTime1 20;Power1 ON"]  # tenths of a second: the relay switches itself off after 2 s
            await until(lambda: bridge.supervisor.door_status()["flat-101"]["lock"] == "locked", 10, "the relay to switch off")
        task.cancel()

    asyncio.run(scenario())


def test_nuki_unlatch_command_response_and_door_sensor(site: Site, tmp_path: Path) -> None:
    topic = f"nuki/{secrets.token_hex(4)}"
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9", flat={"profile": "nuki", "device_topic": topic})
    door = cfg.doors[0]

    async def scenario() -> None:
        nuki = VendorSim("nuki", topic, port=BROKER_PORT)
        task = asyncio.create_task(nuki.run())
        await asyncio.wait_for(nuki.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            assert (await bridge.supervisor.pulse(door, ALLOW)).status == "executed"
            assert nuki.commands == ["3"] and nuki.unlocks == 1
            await until(lambda: bridge.supervisor.door_status()["flat-101"]["lock"] == "locked", 10, "the latch to return")
            await nuki.door(open_=True)
            await until(lambda: any(e.kind == "door_opened" for e in bridge.journal.entries()), 5, "the door sensor")
        task.cancel()

    asyncio.run(scenario())


def test_tasmota_pulse_time_units() -> None:
    assert [tasmota_pulse_time(s) for s in (1, 2.5, 11.1, 12, 30)] == [10, 25, 111, 112, 130]
