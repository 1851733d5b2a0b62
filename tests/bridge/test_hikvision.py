"""Hikvision terminals the way real sites run them: remote verification, terminal-local decisions
journalled with their temperature, the alert stream, XML ANPR, the terminal's person list kept in
step with the grants, restarted terminals, skewed terminal clocks. Against the ISAPI simulator
(written from the ISAPI documentation) and, where the service decides, a real service process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.simulators.gate import FACE_FAIL, FACE_PASS, GateSim
from door_firmware_bridge.simulators.site import VAN_PLATE
from tests.bridge.conftest import ServiceProcess, Site, bridge_config, running, until

NO_SERVICE = "http://127.0.0.1:9"


async def _gate_bridge(site: Site, tmp_path: Path, service_url: str, *, remote_check: bool = True, feed: Path | None = None,
                       gate: dict[str, Any] | None = None, isapi: dict[str, Any] | None = None, **overrides: Any) -> tuple[GateSim, Bridge]:
    sim = GateSim(bridge_url="", remote_check=remote_check)
    await sim.start()
    gate_cfg = (gate or {}) | {"isapi": {"mode": "remote_check" if remote_check else "bridge_opens"} | (isapi or {})}
    cfg = bridge_config(site, tmp_path, service_url=service_url, gate_url=sim.base_url, feed_dir=feed, gate=gate_cfg, **overrides)
    return sim, Bridge(cfg)


def _listen(sim: GateSim, bridge: Bridge) -> None:
    assert bridge.isapi is not None
    sim.bridge_url = f"http://127.0.0.1:{bridge.isapi.port}/isapi/gate-in"


def _gate_decisions(bridge: Bridge) -> list[tuple[str, list[str]]]:
    gate_id = bridge.cfg.door("gate-in").door_id
    return [(e.kind, e.data["reasons"]) for e in bridge.journal.entries() if e.kind.startswith("access_") and e.door_id == gate_id]


def _feed(site: Site, tmp_path: Path) -> Path:
    folder = tmp_path / "feed"
    site.write_feed(folder)
    return folder


def test_remote_verification_the_terminal_asks_and_shows_the_verdict(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim, bridge = await _gate_bridge(site, tmp_path, service.url, gate={"require_temperature": True})
        async with running(bridge):
            _listen(sim, bridge)
            await sim.access(qr=site.employee_pass, temperature=36.5)
            await sim.access(qr=site.tenant_pass, temperature=36.5)  # the tenant has no grant at the park gate
            await sim.access(qr=site.employee_pass, temperature=38.2)
            results = [(v.result, v.info) for v in sim.verdicts]
            assert results[0] == ("success", "ok")
            assert results[1] == ("failed", "no_grant_for_door") and results[2] == ("failed", "temperature_high")
            # The terminal opened the door itself on the one success; the bridge sent no door command.
            assert len(sim.opens) == 1
            assert _gate_decisions(bridge) == [("access_granted", []), ("access_denied", ["no_grant_for_door"]), ("access_denied", ["temperature_high"])]
            assert [e.data["status"] for e in bridge.journal.entries("command_result")] == ["executed"]
        await sim.stop()

    asyncio.run(scenario())


def test_one_temperature_reading_lets_one_person_in(site: Site, tmp_path: Path) -> None:
    """A fever cannot walk in on someone else's reading: a thermometry-only event, then two passes within 5 s."""
    _, second_pass = site.issue_pass("employee")
    feed = _feed(site, tmp_path)

    async def scenario() -> None:
        sim, bridge = await _gate_bridge(site, tmp_path, NO_SERVICE, feed=feed, gate={"require_temperature": True})
        await bridge.refresh_feed()
        async with running(bridge):
            _listen(sim, bridge)
            await sim.access(temperature=36.5)  # someone's forehead
            await sim.access(qr=site.employee_pass)
            await sim.access(qr=second_pass)  # a second person, no reading of their own
            assert [(v.result, v.info) for v in sim.verdicts] == [("success", "ok"), ("failed", "temperature_reading_used")]
            assert len(sim.opens) == 1
        await sim.stop()

    asyncio.run(scenario())


def test_terminal_local_decisions_are_journalled_with_temperature_and_fever_alarm(site: Site, tmp_path: Path) -> None:
    employee = site.pseudonym("employee")

    async def scenario() -> None:
        sim, bridge = await _gate_bridge(site, tmp_path, NO_SERVICE, remote_check=False)
        sim.people[employee] = {"employeeNo": employee, "Valid": {"beginTime": "2000-01-01T00:00:00", "endTime": "2099-01-01T00:00:00"}}
        sim.enrol_face(employee)
        async with running(bridge):
            _listen(sim, bridge)
            await sim.face(employee, temperature=38.5, abnormal=True)  # the terminal decides alone and lets them in
            await sim.face("f" * 32, temperature=36.4)  # a stranger: refused by the terminal
            await until(lambda: len(bridge.journal.entries("device_access_event")) == 2, 10, "the local decisions")
            passed, refused = (e.data for e in bridge.journal.entries("device_access_event"))
            assert (passed["minor"], passed["granted"], passed["event"]["employee_no"], passed["source"]) == (FACE_PASS, True, employee, "device")
            assert passed["temperature"]["celsius"] == 38.5 and passed["temperature"]["reasons"] == ["temperature_high"]
            assert (refused["minor"], refused["granted"]) == (FACE_FAIL, False)
            fever = bridge.journal.entries("fever_detected")
            assert len(fever) == 1 and fever[0].data["admitted_by_terminal"] is True and fever[0].data["alarm"] is True
            assert fever[0].data["advice"] == "re-check with a clinical thermometer"
            assert _gate_decisions(bridge) == [] and bridge.journal.entries("command_sent") == []  # never acted on
        await sim.stop()

    asyncio.run(scenario())


def test_terminal_person_list_follows_the_grants(site: Site, tmp_path: Path) -> None:
    employee, tenant = site.pseudonym("employee"), site.pseudonym("tenant")
    feed = _feed(site, tmp_path)

    async def scenario() -> None:
        sim, bridge = await _gate_bridge(site, tmp_path, NO_SERVICE, remote_check=False, feed=feed, isapi={"sync_people": True})
        sim.people["installer-added"] = {"employeeNo": "installer-added", "Valid": {"beginTime": "2000-01-01T00:00:00", "endTime": "2099-01-01T00:00:00"}}
        await bridge.refresh_feed()
        async with running(bridge):
            _listen(sim, bridge)
            # One sync adds the employee and deletes the stranger, one request each: wait for both.
            # Nobody else: the tenant has no gate grant, the installer's entry is not in the grants.
            await until(lambda: set(sim.people) == {employee}, 10, "only the employee on the terminal")
            person = sim.people[employee]
            assert person["name"] == f"p-{employee[:8]}" and person["userType"] == "normal" and tenant not in sim.people
            sim.enrol_face(employee)
            await sim.face(employee)
            assert len(sim.opens) == 1  # recognised and let in by the terminal alone
            # The grant is revoked: the next feed takes the person, and their face, off the terminal.
            site.set_grant_status(site.grant_of("employee", "gate_group"), "revoke")
            site.write_feed(feed)
            await until(lambda: employee not in sim.people, 10, "the person removed")
            assert employee not in sim.faces
            await sim.face(employee)
            assert len(sim.opens) == 1 and sim.events[-1]["AccessControllerEvent"]["subEventType"] == FACE_FAIL
            synced = [e.data for e in bridge.journal.entries("terminal_people_synced")]
            assert synced[0]["added"] == 1 and synced[0]["deleted"] == 1 and synced[-1]["deleted"] == 1
        await sim.stop()

    asyncio.run(scenario())


def test_withdrawn_face_template_leaves_the_person_without_a_face(site: Site, tmp_path: Path) -> None:
    """Where the site shares templates, a granted person whose template is gone (consent withdrawn) keeps
    the entry (QR still works) but the terminal's face of them is deleted."""
    employee = site.pseudonym("employee")
    site.set_site_settings({"sync": {"faces": True}})
    feed = _feed(site, tmp_path)  # the employee is granted and has no template

    async def scenario() -> None:
        sim, bridge = await _gate_bridge(site, tmp_path, NO_SERVICE, remote_check=False, feed=feed, isapi={"sync_people": True})
        sim.people[employee] = {"employeeNo": employee, "Valid": {"beginTime": "2000-01-01T00:00:00", "endTime": "2099-01-01T00:00:00"}}
        sim.enrol_face(employee)
        await bridge.refresh_feed()
        async with running(bridge):
            _listen(sim, bridge)
            await until(lambda: employee not in sim.faces, 10, "the face removed")
            assert employee in sim.people
        await sim.stop()

    asyncio.run(scenario())


def test_alert_stream_delivers_events_and_reconnects_with_recovery(site: Site, tmp_path: Path) -> None:
    feed = _feed(site, tmp_path)

    async def scenario() -> None:
        sim, bridge = await _gate_bridge(site, tmp_path, NO_SERVICE, feed=feed, isapi={"events": "alert_stream", "heartbeat_s": 1, "timeout_s": 1})
        sim.heartbeat_s = 0.5
        await bridge.refresh_feed()
        async with running(bridge):
            assert bridge.isapi is not None
            terminal = bridge.isapi.terminals["gate-in"]
            await until(lambda: bool(sim._streams), 10, "the bridge to open the stream")
            await sim.access(qr=site.employee_pass)  # remote verification over the stream, verdict by PUT
            assert [v.result for v in sim.verdicts] == ["success"]
            # The terminal goes silent (a cable pulled): no heartbeat, the bridge drops and reopens the stream.
            sim.unreachable = True
            await until(lambda: terminal.reachable is False, 15, "the terminal seen offline")
            sim.unreachable = False
            await sim.access(temperature=36.6, deliver=False)  # happened while the stream was down
            await until(lambda: len(bridge.journal.entries("device_event_recovered")) == 1, 20, "the recovery on reconnect")
            await until(lambda: bool(sim._streams), 10, "the stream reopened")
            await sim.access(qr=site.employee_pass)
            assert [v.result for v in sim.verdicts] == ["success", "success"]
        await sim.stop()

    asyncio.run(scenario())


def test_xml_anpr_events_on_a_plate_lane(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim, bridge = await _gate_bridge(site, tmp_path, service.url, remote_check=False, gate={"lane": "plate_only"}, isapi={"allowed_sources": ["127.0.0.1"]})
        async with running(bridge):
            _listen(sim, bridge)
            await sim.plate(VAN_PLATE, xml=True)
            await until(lambda: len(_gate_decisions(bridge)) == 1, 10, "the van's decision")
            await sim.plate("粤B99999", xml=True)
            await until(lambda: len(_gate_decisions(bridge)) == 2, 10, "the stranger's decision")
            assert _gate_decisions(bridge) == [("access_granted", []), ("access_denied", ["subject_unknown"])]
            await until(lambda: len(sim.opens) == 1, 10, "the opening")
        await sim.stop()

    asyncio.run(scenario())


def test_restarted_terminal_is_heard_again_and_reposts_are_not(site: Site, tmp_path: Path) -> None:
    feed = _feed(site, tmp_path)

    async def scenario() -> None:
        sim, bridge = await _gate_bridge(site, tmp_path, NO_SERVICE, remote_check=False, feed=feed)
        await bridge.refresh_feed()
        async with running(bridge):
            _listen(sim, bridge)
            first = await sim.access(qr=site.employee_pass)  # serial 101
            await until(lambda: len(_gate_decisions(bridge)) == 1, 10, "the first decision")
            sim.reboot()  # power cut: the terminal counts from the start again
            await sim.access(qr=site.employee_pass)  # serial 101 again, later in time
            await until(lambda: len(_gate_decisions(bridge)) == 2, 10, "the decision after the reboot")
            reset = bridge.journal.entries("device_serial_reset")
            assert len(reset) == 1 and reset[0].data["serialNo"] == 101
            sim.events.append(first)
            await sim._deliver(first, True)  # the first event posted again (a retry): seen already, ignored
            await asyncio.sleep(0.5)
            assert len(_gate_decisions(bridge)) == 2 and _gate_decisions(bridge)[1] == ("access_granted", [])
        await sim.stop()

    asyncio.run(scenario())


def test_terminal_clock_skew_is_bounded_both_ways_by_the_site_setting(site: Site, tmp_path: Path) -> None:
    feed = _feed(site, tmp_path)

    async def scenario() -> None:
        sim, bridge = await _gate_bridge(site, tmp_path, NO_SERVICE, feed=feed)
        await bridge.refresh_feed()
        async with running(bridge):
            _listen(sim, bridge)
            for offset in (-8, 120, -120, 25):
                sim.clock_offset_s = offset
                await sim.access(qr=site.employee_pass)
            assert [(v.result, v.info) for v in sim.verdicts] == [
                ("success", "ok"), ("failed", "presentation_from_future"), ("failed", "presentation_late"), ("success", "ok")]
            skew = bridge.journal.entries("device_clock_skew")  # one alarm while the clock stays wrong
            assert [(round(e.data["skew_s"]), e.data["limit_s"], e.data["alarm"]) for e in skew] == [(120, 30, True)]
            # The site allows more (Site.settings["bridge"]["max_clock_skew_s"], carried by the signed feed).
            site.set_site_settings({"bridge": {"max_clock_skew_s": 180}})
            site.write_feed(feed)
            await until(lambda: bridge.max_clock_skew_s == 180, 10, "the new setting")
            sim.clock_offset_s = 120
            await sim.access(qr=site.employee_pass)
            assert sim.verdicts[-1].result == "success"
        await sim.stop()

    asyncio.run(scenario())


def test_ten_terminals_with_clocks_skewed_both_ways(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    """Ten gates asking a real service, their clocks from 2 minutes slow to 2 minutes fast: those within
    the site's bound (30 s) are served as if their clocks were right, the others refused both ways,
    with one clock alarm each; the refused ones never reach the service."""
    offsets = [-120, -45, -25, -8, -3, 3, 8, 25, 45, 120]
    door_ids = site.add_doors(len(offsets), person="employee")

    async def scenario() -> None:
        sims = [GateSim(bridge_url="", remote_check=True, clock_offset_s=offset) for offset in offsets]
        for sim in sims:
            await sim.start()
        doors = [{"name": f"gate-{i:02d}", "door_id": door_id, "site_id": site.ids["site"], "adapter": "isapi", "ack_timeout_s": 3, "command_ttl_s": 5,
                  "isapi": {"base_url": sim.base_url, "username": "admin", "password": "gate-pass-1", "mode": "remote_check"}}
                 for i, (door_id, sim) in enumerate(zip(door_ids, sims, strict=True))]
        cfg = bridge_config(site, tmp_path, service_url=service.url, doors=doors)
        async with running(Bridge(cfg)) as bridge:
            assert bridge.isapi is not None
            for i, sim in enumerate(sims):
                sim.bridge_url = f"http://127.0.0.1:{bridge.isapi.port}/isapi/gate-{i:02d}"
            await asyncio.gather(*(sim.access(qr=site.employee_pass) for sim in sims))
            verdicts = [(offset, sim.verdicts[0].result, sim.verdicts[0].info) for offset, sim in zip(offsets, sims, strict=True)]
            assert verdicts == [
                (-120, "failed", "presentation_late"), (-45, "failed", "presentation_late"),
                (-25, "success", "ok"), (-8, "success", "ok"), (-3, "success", "ok"), (3, "success", "ok"), (8, "success", "ok"), (25, "success", "ok"),
                (45, "failed", "presentation_from_future"), (120, "failed", "presentation_from_future"),
            ]
            assert sum(len(sim.opens) for sim in sims) == 6
            measured = sorted(e.data["skew_s"] for e in bridge.journal.entries("device_clock_skew"))
            assert len(measured) == 4 and all(abs(m - o) < 3 for m, o in zip(measured, (-120, -45, 45, 120), strict=True))
            granted = bridge.journal.entries("access_granted")
            assert len(granted) == 6 and {e.data["source"] for e in granted} == {"online"}
            await until(lambda: bridge.journal.counts()["pending"] == 0, 20, "the upload")
        for sim in sims:
            await sim.stop()

    asyncio.run(scenario())
