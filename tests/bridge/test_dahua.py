"""Dahua terminals through the Dahua HTTP API (event attach stream, openDoor, record search), against
a simulator written from that API's document."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from door_firmware_bridge.adapters.dahua import Terminal, parse_records, record_time
from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.config import BridgeConfig
from door_firmware_bridge.journal import Entry, Journal
from door_firmware_bridge.model import Decision, DeviceEvent, LocalDecision, Recorded
from door_firmware_bridge.simulators.dahua import DahuaSim
from idsvc.audit.service import AuditFilter, query
from idsvc.context import AppContext
from tests.bridge.conftest import ServiceProcess, Site, bridge_config, running, until

ALLOW = Decision(True, (), "online", "qr")


def _kinds(bridge: Bridge) -> list[str]:
    return [e.kind for e in bridge.journal.entries()]


def _decisions(bridge: Bridge) -> list[Entry]:
    return bridge.journal.entries("device_access_event")


def _config(site: Site, tmp_path: Path, sim: DahuaSim, service_url: str = "http://127.0.0.1:9", **dahua: Any) -> BridgeConfig:
    gate = {"name": "gate-in", "door_id": site.ids["gate"], "site_id": site.ids["site"], "adapter": "dahua", "pulse_s": 2, "ack_timeout_s": 2, "command_ttl_s": 4,
            "relock_grace_s": 0.5, "dahua": {"base_url": sim.base_url, "username": "admin", "password": "dahua-pass-1", "heartbeat_s": 1} | dahua}
    return bridge_config(site, tmp_path, service_url=service_url, doors=[gate])


async def _cut(sim: DahuaSim, bridge: Bridge) -> None:
    """The terminal falls silent: the bridge drops the stream and sees it offline."""
    offline = _kinds(bridge).count("device_offline")
    sim.silent = True
    await until(lambda: _kinds(bridge).count("device_offline") == offline + 1, 10, "the silence")


async def _restore(sim: DahuaSim, bridge: Bridge) -> None:
    online = _kinds(bridge).count("device_online")
    sim.silent = False
    await until(lambda: _kinds(bridge).count("device_online") == online + 1, 10, "the stream back")


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


def test_decisions_made_while_the_stream_was_down_are_fetched_once_in_the_terminals_local_time(site: Site, tmp_path: Path, service: ServiceProcess, ctx: AppContext) -> None:
    """A Chinese terminal (clock at +08:00) lets two people in while the bridge cannot hear it: after the
    reconnect both are journalled once, at the right instant, and reach the service's audit trail."""

    async def scenario() -> None:
        sim = DahuaSim(utc_offset=timedelta(hours=8))
        await sim.start()
        cfg = _config(site, tmp_path, sim, service.url, utc_offset="+08:00", record_page=1)  # one record per search: the paging is used
        async with running(Bridge(cfg)) as bridge:
            await until(lambda: bridge.supervisor.door_status()["gate-in"]["online"] is True, 10, "the event stream")
            sim.card("1001", passed=True)  # seen live: RecNo 1
            await until(lambda: len(_decisions(bridge)) == 1, 5, "the live decision")
            await _cut(sim, bridge)
            sim.card("2002", passed=True)  # RecNo 2 and 3: nobody is listening
            sim.card("3003", passed=False)
            searches = len(sim.finds)
            await _restore(sim, bridge)
            await until(lambda: len(_decisions(bridge)) == 3, 10, "the record search")
            await asyncio.sleep(0.5)  # a duplicate would arrive now
            entries = _decisions(bridge)
            assert [(e.data["rec_no"], e.data["event"]["user_id"], e.data["granted"], e.data.get("recovered", False)) for e in entries] == [
                (1, "1001", True, False), (2, "2002", True, True), (3, "3003", False, True)]
            for entry, record in zip(entries[1:], sim.records[1:], strict=True):  # the terminal's local 20:00 is 12:00 UTC
                assert entry.at == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=record["CreateTime"] - 8 * 3600)
                assert abs((entry.at - datetime.now(UTC)).total_seconds()) < 60
            finds = sim.finds[searches:]
            assert len(finds) >= 3 and finds[0]["count"] == "1" and all(f["name"] == "AccessControlCardRec" for f in finds)  # page by page
            assert 0 < sim.local_now() - int(finds[0]["StartTime"]) <= 5 * 60 + 60  # asked in the terminal's local time, from the cursor
            assert (bridge.journal.get_cursor("dahua:gate-in:recno") or "").startswith("3|")
            await until(lambda: bridge.journal.counts().get("pending", 0) == 0, 15, "the upload")
        with ctx.db.session() as s:
            trail = [e for e in query(s, AuditFilter(kind="device.device_access_event"), 50) if e.door_id == site.ids["gate"]]
        assert sorted((e.data["rec_no"], e.data.get("recovered", False)) for e in trail) == [(1, False), (2, True), (3, True)]
        await sim.stop()

    asyncio.run(scenario())


def test_a_gap_in_live_record_numbers_is_fetched_and_what_was_seen_live_is_not_journalled_again(site: Site, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim = DahuaSim()
        await sim.start()
        async with running(Bridge(_config(site, tmp_path, sim))) as bridge:
            await until(lambda: bridge.supervisor.door_status()["gate-in"]["online"] is True, 10, "the event stream")
            sim.card("1001", passed=True)  # 1, live
            await until(lambda: len(_decisions(bridge)) == 1, 5, "the first decision")
            sim.card("2002", passed=True, deliver=False)  # 2, lost on the way
            sim.card("3003", passed=True)  # 3 arrives: 2 is fetched; the search also answers 1 and 3, seen live
            await until(lambda: len(_decisions(bridge)) == 3, 5, "the gap")
            await _cut(sim, bridge)
            await _restore(sim, bridge)  # the reconnect searches again: 1-3 are all in its answer
            await until(lambda: len(sim.finds) >= 2, 5, "the reconnect search")
            await asyncio.sleep(0.5)
            assert sorted((e.data["rec_no"], e.data.get("recovered", False)) for e in _decisions(bridge)) == [(1, False), (2, True), (3, False)]
        await sim.stop()

    asyncio.run(scenario())


def test_a_restarted_bridge_fetches_what_the_terminal_decided_meanwhile(site: Site, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim = DahuaSim()
        await sim.start()
        cfg = _config(site, tmp_path, sim)
        async with running(Bridge(cfg)) as bridge:
            await until(lambda: bridge.supervisor.door_status()["gate-in"]["online"] is True, 10, "the event stream")
            sim.card("1001", passed=True)
            await until(lambda: len(_decisions(bridge)) == 1, 5, "the live decision")
        sim.card("2002", passed=True)  # the bridge is down
        sim.card("3003", passed=True)
        async with running(Bridge(cfg)) as bridge:
            await until(lambda: len(_decisions(bridge)) == 3, 10, "the catch-up")
            await asyncio.sleep(0.5)
            assert [(e.data["rec_no"], e.data.get("recovered", False)) for e in _decisions(bridge)] == [(1, False), (2, True), (3, True)]
        await sim.stop()

    asyncio.run(scenario())


def test_a_terminals_history_from_before_the_first_attach_is_not_fetched(site: Site, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim = DahuaSim()
        await sim.start()
        sim.card("0001", passed=True)  # decided before this bridge ever heard of the terminal
        async with running(Bridge(_config(site, tmp_path, sim))) as bridge:
            await until(lambda: bool(bridge.journal.get_cursor("dahua:gate-in:recno")), 10, "the first attach")
            await _cut(sim, bridge)
            sim.card("1001", passed=True)  # missed: the bridge's to fetch
            await _restore(sim, bridge)
            await until(lambda: len(_decisions(bridge)) == 1, 10, "the record search")
            await asyncio.sleep(0.5)
            assert [(e.data["rec_no"], e.data["event"]["user_id"]) for e in _decisions(bridge)] == [(2, "1001")]
        await sim.stop()

    asyncio.run(scenario())


def test_a_terminal_whose_records_were_cleared_counts_again_and_the_cursor_follows(site: Site, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim = DahuaSim()
        await sim.start()
        async with running(Bridge(_config(site, tmp_path, sim))) as bridge:
            await until(lambda: bridge.supervisor.door_status()["gate-in"]["online"] is True, 10, "the event stream")
            sim.card("1001", passed=True)
            sim.card("2002", passed=True)
            await until(lambda: len(_decisions(bridge)) == 2, 5, "the live decisions")
            sim.records.clear()  # cleared on the terminal: RecNo starts at 1 again
            sim.card("3003", passed=True)
            sim.card("4004", passed=True)
            await until(lambda: len(_decisions(bridge)) == 4, 5, "the decisions after the reset")
            assert [(e.data["rec_no"], e.data["event"]["user_id"]) for e in _decisions(bridge)] == [(1, "1001"), (2, "2002"), (1, "3003"), (2, "4004")]
            assert [(e.data["rec_no"], e.data["previous"]) for e in bridge.journal.entries("device_serial_reset")] == [(1, 2)]
            assert (bridge.journal.get_cursor("dahua:gate-in:recno") or "").startswith("2|")
        await sim.stop()

    asyncio.run(scenario())


def test_a_garbled_record_answer_is_journalled_and_the_stream_goes_on(site: Site, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim = DahuaSim()
        await sim.start()
        async with running(Bridge(_config(site, tmp_path, sim))) as bridge:
            await until(lambda: bridge.supervisor.door_status()["gate-in"]["online"] is True, 10, "the event stream")
            sim.card("1001", passed=True)
            await until(lambda: len(_decisions(bridge)) == 1, 5, "the live decision")
            await _cut(sim, bridge)
            sim.card("2002", passed=True)
            sim.record_answer = "<html><body>502 Bad Gateway</body></html>"
            await _restore(sim, bridge)
            await until(lambda: "device_records_unreadable" in _kinds(bridge), 5, "the unreadable answer")
            sim.card("3003", passed=True)  # the stream still works: 3 is live, and 2 (a gap) is searched again and still unreadable
            await until(lambda: 3 in [e.data["rec_no"] for e in _decisions(bridge)], 5, "the next live decision")
            sim.record_answer = None
            await _cut(sim, bridge)
            await _restore(sim, bridge)  # the cursor stayed before 2 (3 is kept as seen ahead of the gap): 2 is found now
            await until(lambda: len(_decisions(bridge)) == 3, 5, "the missed decision")
            await asyncio.sleep(0.5)
            assert [(e.data["rec_no"], e.data.get("recovered", False)) for e in _decisions(bridge)] == [(1, False), (3, False), (2, True)]
            assert (bridge.journal.get_cursor("dahua:gate-in:recno") or "").startswith("3|")
            assert bridge.journal.entries("device_records_unreadable")[0].data["alarm"] is True
        await sim.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("answer", ["Error\r\nBad Request!\r\n", "<html>502</html>", "", "found=two\r\n", "totalCount=5\r\nrecords[0].RecNo=1\r\n"])
def test_answers_that_are_no_record_list_are_refused(answer: str) -> None:
    with pytest.raises(ValueError):
        parse_records(answer)


def test_records_are_read_in_order_and_times_in_the_terminals_zone() -> None:
    text = "totalCount=2\r\nfound=2\r\nrecords[1].RecNo=8\r\nrecords[1].CreateTime=1764619200\r\nrecords[0].RecNo=7\r\nrecords[0].CreateTime=2025-12-01 20:00:00\r\nnoise\r\n"
    with pytest.raises(ValueError):  # a line that is not key=value is no record answer
        parse_records(text)
    rows = parse_records(text.replace("noise\r\n", ""))
    assert [r["RecNo"] for r in rows] == ["7", "8"]
    china = timezone(timedelta(hours=8))
    assert record_time(rows[0]["CreateTime"], china) == datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
    assert record_time(rows[1]["CreateTime"], china) == datetime(2025, 12, 1, 12, 0, tzinfo=UTC)  # 1764619200 = 2025-12-01 12:00 as local seconds
    with pytest.raises(ValueError):
        record_time("yesterday", china)


def test_a_live_event_a_search_already_found_is_dropped_and_another_decision_under_its_number_is_not(site: Site, tmp_path: Path) -> None:
    """The race of the stream and a search: the same RecNo with the same person and result is the same
    decision; the same RecNo with another is a terminal that counts again."""

    async def scenario() -> None:
        sim = DahuaSim()
        await sim.start()
        door = _config(site, tmp_path, sim).doors[0]
        assert door.dahua is not None
        journal = Journal(tmp_path / "race.db")
        terminal = Terminal(door, door.dahua, journal)
        out: list[DeviceEvent] = []

        async def sink(event: DeviceEvent) -> None:
            out.append(event)

        sim.card("1001", passed=True, deliver=False)
        terminal.cursor.start(datetime.now(UTC) - timedelta(minutes=1))
        assert await terminal.recover(sink) == 1  # found by the search first
        assert await terminal.live({"RecNo": 1, "UserID": "1001", "CardNo": "A1B2C3D4", "Status": 1, "UTC": 0}, sink) is None
        assert len(out) == 1 and isinstance(out[0], LocalDecision) and out[0].data["recovered"] is True  # the stream's copy was dropped
        await terminal.live({"RecNo": 1, "UserID": "7007", "CardNo": "", "Status": 1}, sink)  # another decision under number 1
        assert [type(e).__name__ for e in out[1:]] == ["LocalDecision", "Recorded"]
        assert isinstance(out[2], Recorded) and out[2].kind == "device_serial_reset"
        await terminal.client.aclose()
        journal.close()
        await sim.stop()

    asyncio.run(scenario())
