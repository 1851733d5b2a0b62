"""A park gate in the Hikvision ISAPI style: temperature gate, plate lanes, digest-auth door control,
and recovery of missed events by serialNo."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.model import utcnow
from door_firmware_bridge.simulators.gate import GateSim
from tests.bridge.conftest import ServiceProcess, Site, bridge_config, running, until


async def _gate_bridge(site: Site, tmp_path: Path, service_url: str, **overrides: Any) -> tuple[GateSim, Bridge]:
    gate = GateSim(bridge_url="")
    await gate.start()
    cfg = bridge_config(site, tmp_path, service_url=service_url, gate_url=gate.base_url, **overrides)
    bridge = Bridge(cfg)
    return gate, bridge


def _gate_decisions(bridge: Bridge) -> list[tuple[str, list[str]]]:
    gate_id = bridge.cfg.door("gate-in").door_id
    return [(e.kind, e.data["reasons"]) for e in bridge.journal.entries() if e.kind.startswith("access_") and e.door_id == gate_id]


def test_temperature_gate(site: Site, tmp_path: Path) -> None:
    # The gate is the bridge's own check, before anyone is asked; the verified offline lists decide the pass.
    feed = tmp_path / "feed"
    site.write_feed(feed)

    async def scenario() -> None:
        gate, bridge = await _gate_bridge(site, tmp_path, "http://127.0.0.1:9", feed_dir=feed, gate={"require_temperature": True})
        await bridge.refresh_feed()
        async with running(bridge):
            assert bridge.isapi is not None
            gate.bridge_url = f"http://127.0.0.1:{bridge.isapi.port}/isapi/gate-in"
            await until(lambda: bridge.isapi.terminals["gate-in"].reachable is True, 10, "the terminal probe")
            cases = [
                dict(temperature=36.5),  # normal: opens
                dict(temperature=37.4),  # over the 37.3 default
                dict(temperature=36.6, abnormal=True),  # the terminal itself flags it
                dict(temperature=34.0),  # too low to be a good reading
                dict(temperature=51.0),  # not a human reading at all
                dict(temperature=98.0, unit="fahrenheit"),  # 36.7 C, converted
                dict(),  # no reading where one is required
            ]
            for n, case in enumerate(cases, start=1):
                await gate.access(qr=site.employee_pass, **case)
                await until(lambda n=n: len(_gate_decisions(bridge)) == n, 10, f"decision {n}")
            # A reading 20 s before the scan, from a thermometry-only event, is not this person's.
            await gate.access(temperature=36.5, at=utcnow() - timedelta(seconds=20))
            await gate.access(qr=site.employee_pass)
            await until(lambda: len(_gate_decisions(bridge)) == len(cases) + 1, 10, "the untied decision")
            await until(lambda: len(gate.opens) == 2, 10, "the two allowed openings")
            assert _gate_decisions(bridge) == [
                ("access_granted", []),
                ("access_denied", ["temperature_high"]),
                ("access_denied", ["temperature_high"]),
                ("access_denied", ["temperature_low"]),
                ("access_denied", ["temperature_implausible"]),
                ("access_granted", []),
                ("access_denied", ["temperature_missing"]),
                ("access_denied", ["temperature_not_this_transaction"]),
            ]
            fever = bridge.journal.entries("fever_detected")
            assert len(fever) == 2 and fever[0].data["advice"] == "re-check with a clinical thermometer"
            assert len(bridge.journal.entries("temperature_invalid")) == 4
            results = [e.data["status"] for e in bridge.journal.entries("command_result")]
            assert results == ["executed", "executed"]
        await gate.stop()

    asyncio.run(scenario())


def test_plate_only_and_plate_and_pass_lanes(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        gate, bridge = await _gate_bridge(site, tmp_path, service.url, gate={"lane": "plate_only", "isapi": {"allowed_sources": ["127.0.0.1"]}})
        async with running(bridge):
            assert bridge.isapi is not None
            gate.bridge_url = f"http://127.0.0.1:{bridge.isapi.port}/isapi/gate-in"
            reads = [("粤B·12345", 95), ("粤B99999", 95), ("粤B12345", 40)]  # the van (separators ignored); nobody's; a doubtful read
            for n, (plate, confidence) in enumerate(reads, start=1):
                await gate.plate(plate, confidence)
                await until(lambda n=n: len(_gate_decisions(bridge)) == n, 10, f"plate decision {n}")
            assert _gate_decisions(bridge) == [("access_granted", []), ("access_denied", ["subject_unknown"]), ("access_denied", ["plate_low_confidence"])]
            await until(lambda: len(gate.opens) == 1, 10, "the plate opening")
        await gate.stop()

        gate, bridge = await _gate_bridge(site, tmp_path / "lane2", service.url, gate={"lane": "plate_and_pass", "require_temperature": True, "isapi": {"allowed_sources": ["127.0.0.1"]}})
        async with running(bridge):
            assert bridge.isapi is not None
            gate.bridge_url = f"http://127.0.0.1:{bridge.isapi.port}/isapi/gate-in"
            await gate.access(qr=site.employee_pass, temperature=36.5)  # a pass without a vehicle read: refused
            await until(lambda: len(_gate_decisions(bridge)) == 1, 10, "the first lane decision")
            await gate.plate("粤B12345")  # vehicles are not held to the temperature gate
            await until(lambda: bool(bridge.journal.entries("plate_read")), 10, "the plate read")
            await gate.access(qr=site.employee_pass, temperature=36.5)  # plate AND pass: opens
            await until(lambda: len(_gate_decisions(bridge)) == 2, 10, "the second lane decision")
            await gate.plate("粤B99999")
            await until(lambda: len(bridge.journal.entries("plate_read")) == 2, 10, "the second plate read")
            await gate.access(qr=site.employee_pass, temperature=36.5)  # good pass, unknown vehicle: refused
            await until(lambda: len(_gate_decisions(bridge)) == 3, 10, "the third lane decision")
            assert _gate_decisions(bridge) == [
                ("access_denied", ["plate_missing"]),
                ("access_granted", []),
                ("access_denied", ["plate:subject_unknown"]),
            ]
            await until(lambda: len(gate.opens) == 1, 10, "the lane opening")
            assert bridge.journal.entries("access_granted")[0].data["credential"] == "plate+qr"
        await gate.stop()

    asyncio.run(scenario())


def test_missed_events_are_recovered_by_serial_and_never_acted_on(site: Site, tmp_path: Path) -> None:
    async def scenario() -> None:
        gate, bridge = await _gate_bridge(site, tmp_path, "http://127.0.0.1:9", gate={"isapi": {"timeout_s": 0.5}})
        async with running(bridge):
            assert bridge.isapi is not None
            terminal = bridge.isapi.terminals["gate-in"]
            gate.bridge_url = f"http://127.0.0.1:{bridge.isapi.port}/isapi/gate-in"
            await gate.access(temperature=36.4)  # seen live: serial 101
            await until(lambda: terminal.last_serial == 101, 10, "the first event")
            await gate.access(qr=site.employee_pass, deliver=False)  # 102, lost on the way
            await gate.access(temperature=36.5, deliver=False)  # 103, lost
            await gate.access(temperature=36.6)  # 104 arrives: the gap 102-103 is fetched
            await until(lambda: len(bridge.journal.entries("device_event_recovered")) == 2, 10, "the gap recovery")
            # The terminal goes dark; events pile up on it; when it answers again they are fetched.
            gate.unreachable = True
            await until(lambda: terminal.reachable is False, 15, "the terminal to be seen offline")
            gate.unreachable = False
            await gate.access(temperature=36.7, deliver=False)  # 105
            await gate.access(qr=site.employee_pass, deliver=False)  # 106
            await until(lambda: len(bridge.journal.entries("device_event_recovered")) == 4, 15, "the reconnect recovery")
            recovered = [e.data["serialNo"] for e in bridge.journal.entries("device_event_recovered")]
            assert recovered == [102, 103, 105, 106]
            assert terminal.last_serial == 106 and (bridge.journal.get_cursor("isapi:gate-in:serial") or "").startswith("106|")
            assert gate.opens == []  # a recovered QR scan is late by definition: never opens the gate
            assert [e.kind for e in bridge.journal.entries() if e.kind in ("device_offline", "device_online")] == ["device_offline", "device_online"]
        await gate.stop()

    asyncio.run(scenario())


def test_events_from_other_addresses_are_refused(site: Site, tmp_path: Path) -> None:
    """A plate is the camera's unsigned word: on a plate lane only the listed addresses may post."""

    async def scenario() -> None:
        gate, bridge = await _gate_bridge(site, tmp_path, "http://127.0.0.1:9", gate={"lane": "plate_only", "isapi": {"allowed_sources": ["10.0.0.20"]}})
        async with running(bridge):
            assert bridge.isapi is not None
            gate.bridge_url = f"http://127.0.0.1:{bridge.isapi.port}/isapi/gate-in"
            await gate.plate("粤B12345")
            await until(lambda: bool(bridge.journal.entries("device_message_refused")), 10, "the refusal")
            assert _gate_decisions(bridge) == [] and gate.opens == []
        await gate.stop()

    asyncio.run(scenario())


def test_multipart_event_with_picture_is_read(site: Site, tmp_path: Path) -> None:
    """Terminals in listening mode often post the event JSON and the snapshot picture as multipart."""
    feed = tmp_path / "feed"
    site.write_feed(feed)

    async def scenario() -> None:
        gate, bridge = await _gate_bridge(site, tmp_path, "http://127.0.0.1:9", feed_dir=feed)
        await bridge.refresh_feed()
        async with running(bridge):
            assert bridge.isapi is not None
            event = {"eventType": "AccessControllerEvent", "dateTime": utcnow().isoformat(),
                     "AccessControllerEvent": {"majorEventType": 5, "subEventType": 75, "serialNo": 7, "QRCodeInfo": site.employee_pass}}
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"http://127.0.0.1:{bridge.isapi.port}/isapi/gate-in", files={
                    "AccessControllerEvent": (None, json.dumps(event), "application/json"),
                    "Picture": ("face.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg"),
                })
                assert answer.status_code == 200 and answer.json()["statusCode"] == 1
            await until(lambda: len(_gate_decisions(bridge)) == 1, 10, "the decision")
            assert _gate_decisions(bridge) == [("access_granted", [])]
            await until(lambda: len(gate.opens) == 1, 10, "the opening")
        await gate.stop()

    asyncio.run(scenario())
