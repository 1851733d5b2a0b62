"""Vendor locks through the MQTT adapter's profiles, on the real broker, against simulators written
from each vendor's published protocol (docs/bridge.md, "Vendor protocols")."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from door_firmware_bridge.adapters.profiles.tasmota import tasmota_pulse_time
from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.model import Decision
from door_firmware_bridge.simulators.nuki import DOOR_CALIBRATING, DOOR_CLOSED, DOOR_OPENED, LOCKED, UNLATCHED, UNLATCHING, UNLOCKED, NukiSim
from door_firmware_bridge.simulators.tasmota import TasmotaSim
from door_firmware_bridge.simulators.zigbee import ZigbeeLockSim
from tests.bridge.conftest import BROKER_PORT, Site, bridge_config, running, until

ALLOW = Decision(True, (), "online", "qr")


def _kinds(bridge: Bridge) -> list[str]:
    return [e.kind for e in bridge.journal.entries()]


def _results(bridge: Bridge) -> list[tuple[str, str]]:
    return [(e.data["action"], e.data["status"]) for e in bridge.journal.entries("command_result")]


def test_nuki_unlatch_leaves_it_unlocked_so_the_bridge_locks_it_once_the_door_is_closed(site: Site, tmp_path: Path) -> None:
    nuki_id = secrets.token_hex(4).upper()
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9", flat={"profile": "nuki", "device_topic": f"nuki/{nuki_id}", "pulse_s": 1})
    door = cfg.doors[0]

    async def scenario() -> None:
        nuki = NukiSim(nuki_id, port=BROKER_PORT)
        task = asyncio.create_task(nuki.run())
        await asyncio.wait_for(nuki.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            await until(lambda: bridge.supervisor.door_status()["flat-101"]["lock"] == "locked", 5, "the retained state")
            outcome = await bridge.supervisor.pulse(door, ALLOW)
            assert outcome.status == "executed" and nuki.actions == [3]  # unlatch, QoS 2 with an expiry
            await until(lambda: nuki.state == UNLOCKED, 5, "the unlatch to end")
            assert nuki.states[:3] == [UNLATCHING, UNLATCHED, UNLOCKED]  # the lock does not relock by itself
            await nuki.set_door(DOOR_OPENED)  # the tenant walks in within the pulse: not forced
            await asyncio.sleep(door.pulse_s + 0.5)
            assert nuki.actions == [3], "never lock into an open door"
            await nuki.set_door(DOOR_CLOSED)
            await until(lambda: nuki.state == LOCKED, 5, "the bridge's lock action")
            assert nuki.actions == [3, 2]
            await until(lambda: "door_relocked" in _kinds(bridge), 5, "the relock to be journalled")
            relocked = bridge.journal.entries("door_relocked")[0]
            assert relocked.data["by"] == "bridge"
            await until(lambda: len(_results(bridge)) == 2, 5, "the lock action's result")  # state and answer may come in either order
            assert _results(bridge) == [("pulse_unlock", "executed"), ("lock", "executed")]
            assert "door_forced" not in _kinds(bridge) and "door_opened" in _kinds(bridge)
            # Door sensor state 5 is "calibrating": not a contact fault.
            await nuki.set_door(DOOR_CALIBRATING)
            await asyncio.sleep(0.5)
            assert "door_contact_fault" not in _kinds(bridge)
            # A resident opens with the Nuki Keypad: the lock reports it; the opening is not forced,
            # and the bridge locks it again afterwards like after its own unlatch.
            await nuki.set_door(DOOR_CLOSED)
            await nuki.keypad_unlatch()
            await until(lambda: "device_local_unlock" in _kinds(bridge), 5, "the keypad unlatch")
            await nuki.set_door(DOOR_OPENED)
            await nuki.set_door(DOOR_CLOSED)
            await until(lambda: nuki.actions == [3, 2, 2], 10, "the relock after the keypad")
            assert "door_forced" not in _kinds(bridge)
        task.cancel()

    asyncio.run(scenario())


def test_nuki_with_auto_lock_relocks_itself_and_the_bridge_only_checks(site: Site, tmp_path: Path) -> None:
    nuki_id = secrets.token_hex(4).upper()
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9",
                        flat={"profile": "nuki", "device_topic": f"nuki/{nuki_id}", "pulse_s": 1, "device_relock_s": 2, "relock_grace_s": 1})
    door = cfg.doors[0]

    async def scenario() -> None:
        nuki = NukiSim(nuki_id, port=BROKER_PORT, auto_lock_s=2)  # a real lock allows no less than 30 s
        task = asyncio.create_task(nuki.run())
        await asyncio.wait_for(nuki.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            assert (await bridge.supervisor.pulse(door, ALLOW)).status == "executed"
            await until(lambda: nuki.state == LOCKED and len(nuki.states) > 3, 10, "Auto Lock")
            await until(lambda: "door_relocked" in _kinds(bridge), 5, "the relock")
            assert nuki.actions == [3]  # the bridge sent no lock action
            assert bridge.journal.entries("door_relocked")[0].data["by"] == "device"
        task.cancel()

    asyncio.run(scenario())


def test_tasmota_relay_is_driven_only_with_its_pulse_time_verified(site: Site, tmp_path: Path) -> None:
    topic = f"door_{secrets.token_hex(3)}"
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9", flat={"profile": "tasmota", "device_topic": topic, "pulse_s": 2, "wiring": "fail_safe"})
    door = cfg.doors[0]

    async def scenario() -> None:
        relay = TasmotaSim(topic, port=BROKER_PORT, pulse_time={1: 50})  # 5 s: not what the door wants
        task = asyncio.create_task(relay.run())
        await asyncio.wait_for(relay.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            await until(lambda: "device_misconfigured" in _kinds(bridge), 5, "the PulseTime check")
            wrong = bridge.journal.entries("device_misconfigured")[0].data
            assert (wrong["found"], wrong["expected"]) == (50, 20) and f"cmnd/{topic}/PulseTime1 20" in wrong["note"]
            refused = await bridge.supervisor.pulse(door, ALLOW)
            assert refused.status == "not_sent" and refused.detail == "pulse_time_mismatch" and relay.switched_on == []
            # Commissioning sets it (a flash setting, once); the relay restarts and the bridge reads it again.
            relay.pulse_time[1] = tasmota_pulse_time(door.pulse_s)
            task.cancel()
            relay = TasmotaSim(topic, port=BROKER_PORT, pulse_time={1: 20})
            task = asyncio.create_task(relay.run())
            await until(lambda: bridge.mqtt is not None and not bridge.mqtt.health()["not_ready"], 10, "the verified PulseTime")
            outcome = await bridge.supervisor.pulse(door, ALLOW)
            assert outcome.status == "executed" and outcome.cmd_id is not None
            assert relay.commands[-1] == "POWER1 ON" and len(relay.switched_on) == 1
            # The relay switches itself off after PulseTime (2 s); the bridge journals the relock.
            await until(lambda: "door_relocked" in _kinds(bridge), 6, "the end of PulseTime")
            assert relay.power[1] is False and bridge.journal.entries("door_relocked")[0].data["by"] == "device"
        task.cancel()

    asyncio.run(scenario())


def test_tasmota_pulse_time_units() -> None:
    # Tasmota Commands.md: 1..111 = tenths of a second, 112..64900 = value - 100 seconds.
    assert [tasmota_pulse_time(s) for s in (1, 2.5, 11.1, 11.2, 12, 30)] == [10, 25, 111, 112, 112, 130]


def test_zigbee_lock_is_unlocked_by_lock_state_and_relocked_by_the_bridge(site: Site, tmp_path: Path) -> None:
    name = f"front-{secrets.token_hex(3)}"
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9",
                        flat={"profile": "zigbee2mqtt", "device_topic": f"zigbee2mqtt/{name}", "contact_sensor": f"zigbee2mqtt/{name}-contact", "pulse_s": 1})
    door = cfg.doors[0]

    async def scenario() -> None:
        lock = ZigbeeLockSim(name, sensor=f"{name}-contact", port=BROKER_PORT)
        task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            await until(lambda: bridge.supervisor.door_status()["flat-101"]["online"] is True, 5, "the retained availability")
            outcome = await bridge.supervisor.pulse(door, ALLOW)
            assert outcome.status == "executed" and lock.sets == [{"state": "UNLOCK"}] and lock.lock_state == "unlocked"
            await lock.open_door()
            await until(lambda: "door_opened" in _kinds(bridge), 5, "the opening")
            await asyncio.sleep(door.pulse_s + 0.3)
            assert lock.sets == [{"state": "UNLOCK"}], "never lock into an open door"
            await lock.close_door()
            await until(lambda: lock.lock_state == "locked", 5, "the bridge's LOCK")
            assert lock.sets == [{"state": "UNLOCK"}, {"state": "LOCK"}]
            await until(lambda: "door_relocked" in _kinds(bridge), 5, "the relock")
            # The lock's new state and its answer to LOCK are two messages: either may be handled first.
            await until(lambda: len(_results(bridge)) == 2, 5, "the LOCK command's result")
            assert _results(bridge) == [("pulse_unlock", "executed"), ("lock", "executed")] and "door_forced" not in _kinds(bridge)
            # A bolt that does not go fully out is a jam.
            lock.jam_on_lock = True
            await until(lambda: bridge.supervisor.door_status()["flat-101"]["in_flight"] is None, 5, "the relock to finish")
            assert (await bridge.supervisor.pulse(door, ALLOW)).status == "executed"
            await until(lambda: "lock_jammed" in _kinds(bridge), 5, "the jam")
        task.cancel()

    asyncio.run(scenario())


def test_zigbee2mqtt_1x_plain_availability(site: Site, tmp_path: Path) -> None:
    name = f"side-{secrets.token_hex(3)}"
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9", flat={"profile": "zigbee2mqtt", "device_topic": f"zigbee2mqtt/{name}"})

    async def scenario() -> None:
        lock = ZigbeeLockSim(name, port=BROKER_PORT, legacy=True)
        task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            await until(lambda: bridge.supervisor.door_status()["flat-101"]["online"] is True, 5, "the plain availability")
        task.cancel()

    asyncio.run(scenario())
