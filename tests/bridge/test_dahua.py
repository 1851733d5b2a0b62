"""Dahua terminals through the Dahua HTTP API (event attach stream, openDoor), against a simulator
written from that API's document."""

from __future__ import annotations

import asyncio
from pathlib import Path

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.model import Decision
from door_firmware_bridge.simulators.dahua import DahuaSim
from tests.bridge.conftest import Site, bridge_config, running, until

ALLOW = Decision(True, (), "online", "qr")


def _kinds(bridge: Bridge) -> list[str]:
    return [e.kind for e in bridge.journal.entries()]


def test_dahua_door_opens_on_command_reports_its_own_decisions_and_goes_offline_when_silent(site: Site, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim = DahuaSim()
        await sim.start()
        gate = {"name": "gate-in", "door_id": site.ids["gate"], "site_id": site.ids["site"], "adapter": "dahua", "pulse_s": 2, "ack_timeout_s": 2, "command_ttl_s": 4, "relock_grace_s": 0.5,
                "dahua": {"base_url": sim.base_url, "username": "admin", "password": "dahua-pass-1", "channel": 2, "heartbeat_s": 1}}
        cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9", doors=[gate])
        door = cfg.doors[0]
        async with running(Bridge(cfg)) as bridge:
            await until(lambda: bridge.supervisor.door_status()["gate-in"]["online"] is True, 10, "the event stream")
            outcome = await bridge.supervisor.pulse(door, ALLOW)
            assert outcome.status == "executed"
            assert (sim.opens[0]["channel"], sim.opens[0]["Type"]) == ("2", "Remote")
            await until(lambda: "door_closed" in _kinds(bridge), 6, "the door cycle")
            assert "door_opened" in _kinds(bridge) and "door_forced" not in _kinds(bridge)
            sim.card("1001", passed=True)
            sim.card("2002", passed=False)
            await until(lambda: len(bridge.journal.entries("device_access_event")) == 2, 5, "the terminal's own decisions")
            assert [(e.data["event"]["user_id"], e.data["granted"]) for e in bridge.journal.entries("device_access_event")] == [("1001", True), ("2002", False)]
            await asyncio.sleep(1.0)  # past the pulse's window: an opening now is nobody's
            sim.forced()
            await until(lambda: "door_forced" in _kinds(bridge) and "device_alarm" in _kinds(bridge), 5, "the break-in")
            sim.silent = True  # no heartbeat any more: the stream is dropped and the terminal is offline
            await until(lambda: "device_offline" in _kinds(bridge), 10, "the silence")
            assert (await bridge.supervisor.pulse(door, ALLOW)).status == "not_sent"
            sim.silent = False
            await until(lambda: "device_online" in _kinds(bridge), 10, "the stream back")
        await sim.stop()

    asyncio.run(scenario())
