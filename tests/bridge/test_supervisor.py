"""The actuation supervisor's safety rules against a simulated lock on the real broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.model import Decision
from door_firmware_bridge.simulators.lock import Faults, LockSim
from tests.bridge.conftest import BROKER_PORT, Site, bridge_config, running, until

NO_SERVICE = "http://127.0.0.1:9"
ALLOW = Decision(True, (), "online", "qr")


def _kinds(bridge: Bridge) -> list[str]:
    return [e.kind for e in bridge.journal.entries()]


async def _with_lock(cfg, faults: Faults | None = None) -> tuple[LockSim, asyncio.Task[None]]:  # noqa: ANN001
    lock = LockSim(cfg.site, "flat-101", port=BROKER_PORT, faults=faults)
    task = asyncio.create_task(lock.run())
    await asyncio.wait_for(lock.connected.wait(), 10)
    return lock, task


def test_no_confirmation_is_unknown_with_alarm_and_never_retried(site: Site, tmp_path: Path) -> None:
    cfg = bridge_config(site, tmp_path, service_url=NO_SERVICE)
    door = cfg.doors[0]

    async def scenario() -> None:
        lock, task = await _with_lock(cfg, Faults(ack_delay_s=door.ack_timeout_s + 1.0))
        async with running(Bridge(cfg)) as bridge:
            outcome = await bridge.supervisor.pulse(door, ALLOW)
            assert outcome.status == "timeout_unknown"
            timeout = bridge.journal.entries("command_timeout")
            assert len(timeout) == 1 and timeout[0].data["alarm"] is True and timeout[0].data["cmd_id"] == outcome.cmd_id
            # The slow lock answers after the deadline: journalled as a late result, still nothing re-sent.
            await until(lambda: "command_late_result" in _kinds(bridge), 5, "the late result")
            assert len(lock.received) == 1
            lock.faults = Faults(silent=True)  # executes but its ack is lost
            silent = await bridge.supervisor.pulse(door, ALLOW)
            assert silent.status == "timeout_unknown" and len(lock.received) == 2
            # It did unlock: someone walking through in the pulse window is not a forced door.
            await lock.open_door()
            await until(lambda: "door_opened" in _kinds(bridge), 5, "the opening")
            assert "door_forced" not in _kinds(bridge)
        task.cancel()

    asyncio.run(scenario())


def test_one_command_in_flight_jams_battery_and_offline_device(site: Site, tmp_path: Path) -> None:
    cfg = bridge_config(site, tmp_path, service_url=NO_SERVICE)
    door = cfg.doors[0]

    async def scenario() -> None:
        lock, task = await _with_lock(cfg, Faults(ack_delay_s=0.5))
        async with running(Bridge(cfg)) as bridge:
            first, second = await asyncio.gather(bridge.supervisor.pulse(door, ALLOW), bridge.supervisor.pulse(door, ALLOW))
            assert (first.status, second.status) == ("executed", "rejected_busy") and len(lock.received) == 1
            lock.faults = Faults(jammed=True)
            jammed = await bridge.supervisor.pulse(door, ALLOW)
            assert jammed.status == "device_error" and jammed.lock_state == "jammed"
            await until(lambda: "lock_jammed" in _kinds(bridge), 5, "the jam alarm")
            await lock.set_battery(12)
            await until(lambda: "battery_low" in _kinds(bridge), 5, "the battery alarm")
            # The lock's last will says it is gone: no command is sent into the void.
            async with aiomqtt.Client("127.0.0.1", BROKER_PORT, protocol=aiomqtt.ProtocolVersion.V5) as other:
                await other.publish(f"acs/v1/{cfg.site}/flat-101/availability", "offline", qos=1, retain=True)
            await until(lambda: "device_offline" in _kinds(bridge), 5, "the offline device")
            before = len(lock.received)
            refused = await bridge.supervisor.pulse(door, ALLOW)
            assert refused.status == "not_sent" and refused.detail == "device_offline" and len(lock.received) == before
            with pytest.raises(ValueError):
                await bridge.supervisor.pulse(door, Decision.deny("online", "qr", "no_grant_for_door"))
        task.cancel()

    asyncio.run(scenario())


def test_door_forced_opened_and_held_open(site: Site, tmp_path: Path) -> None:
    cfg = bridge_config(site, tmp_path, service_url=NO_SERVICE)
    door = cfg.doors[0]

    async def scenario() -> None:
        lock, task = await _with_lock(cfg)
        async with running(Bridge(cfg)) as bridge:
            await until(lambda: bridge.supervisor.door_status()["flat-101"]["contact"] == "closed", 5, "the first state")
            await lock.open_door()  # nobody was let in: forced
            await until(lambda: "door_forced" in _kinds(bridge), 5, "the forced-door alarm")
            await lock.close_door()
            await until(lambda: "door_closed" in _kinds(bridge), 5, "the close")
            assert (await bridge.supervisor.pulse(door, ALLOW)).status == "executed"
            await lock.open_door()  # after an allow: a normal opening ...
            await until(lambda: "door_opened" in _kinds(bridge), 5, "the opening")
            # ... left open past held_open_s: an alarm, once.
            await until(lambda: "door_held_open" in _kinds(bridge), door.held_open_s + 5, "the held-open alarm")
            await lock.close_door()
            await until(lambda: _kinds(bridge).count("door_closed") == 2, 5, "the second close")
            assert _kinds(bridge).count("door_forced") == 1 and _kinds(bridge).count("door_held_open") == 1
            forced = bridge.journal.entries("door_forced")[0]
            assert forced.data["alarm"] is True and forced.door_id == door.door_id
        task.cancel()

    asyncio.run(scenario())
