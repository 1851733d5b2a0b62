"""The HJ 212 server inside a real service process, driven by the station simulator over TCP:
answers per Flag, split messages, every data CN, bad frames, password and CRC policy, limits and
faults becoming alarms, and the live alarm notice on the event stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from door_firmware_bridge.sensors.hj212_station import StationSim, data_cp, frame
from idsvc.alarms import sensors
from idsvc.alarms.hj212 import protocol, retention
from idsvc.alarms.models import EmissionRecord, SensorFamily, SensorKind
from idsvc.auth.principal import OPERATOR
from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from tests.bridge.conftest import ServiceProcess, free_port
from tests.world import World, build_world

MN, LEGACY_MN, PW = "0200A1B2C3D4E5F601234567", "0200A1B2C3D4E5F6012345AA", "888888"


@pytest.fixture
def stations(ctx: AppContext) -> tuple[World, dict[str, int]]:
    world = build_world(ctx)
    with ctx.db.session() as s:
        ids = {}
        for mn, settings in ((MN, {}), (LEGACY_MN, {"crc": "modbus_too", "limits": {"a21026": {"hour": 0.3}}})):
            station = sensors.create(s, ctx.sealer, OPERATOR, sensors.NewSensor(
                site_id=world.ids["site_a"], building_id=world.ids["building_a"], code=mn, name=f"Station {mn[-4:]}", family=SensorFamily.hj212,
                kind=SensorKind.emission_station, password=PW, settings=settings))
            ids[mn] = station.id
    return world, ids


@pytest.fixture
def hj212_service(ctx: AppContext, tmp_path: Path) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(ctx, tmp_path)
    proc.hj212_port = free_port()  # type: ignore[attr-defined]
    proc.env |= {"IDSVC_HJ212_PORT": str(proc.hj212_port), "IDSVC_ALARM_SWEEP_S": "0.5"}  # type: ignore[attr-defined]
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _local(hours_ago: int = 1) -> datetime:
    return (datetime.now() - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)


def _fields(answer: bytes | None) -> protocol.Frame:
    assert answer is not None
    parsed = protocol.parse(answer)
    assert parsed.crc_ok
    return parsed


async def _get(service: ServiceProcess, token: str, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as client:
        answer = await client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
        answer.raise_for_status()
        return answer.json()


def test_station_dialogue(stations: tuple[World, dict[str, int]], hj212_service: ServiceProcess) -> None:
    world, ids = stations
    port = hj212_service.hj212_port  # type: ignore[attr-defined]
    admin = world.tokens["admin_a"]

    async def scenario() -> None:
        async with StationSim(MN, PW, port=port) as station:
            now = datetime.now().replace(microsecond=0)
            # Real-time data wanting an answer: 9014 with the same QN, ST=91, Flag=4.
            sent = station.segment("2011", data_cp(now, {"a21026": {"Rtd": 0.12, "Flag": "N"}, "a05001": {"Rtd": 812, "Flag": "N"}}), at=now)
            answer = _fields(await station.send(frame(sent), pieces=5))  # the frame arrives in five pieces
            assert (answer.cn, answer.st, answer.flag, answer.qn, answer.mn, answer.pw) == ("9014", "91", 4, protocol.parse(frame(sent)).qn, MN, PW)
            # Flag without A: stored, not answered.
            assert await station.send(frame(station.segment("2051", data_cp(now, {"a21026": {"Avg": 0.1, "Flag": "N"}}), at=now, flag=4)), answer=False) is None
            assert await station.no_answer()
            # Hour mean above GB 3095 (0.5 mg/m3): an exceedance alarm.
            hour = _local()
            _fields(await station.send(frame(station.segment("2061", data_cp(hour, {"a21026": {"Min": 0.4, "Avg": 0.62, "Max": 0.9, "Flag": "N"}}), at=now))))
            # Day data, a fault flag on NOx: a station fault.
            _fields(await station.send(frame(station.segment("2031", data_cp(_local(24).replace(hour=0), {"a21002": {"Avg": 0.05, "Flag": "D"}}), at=now))))
            # A split hour message (Table C.50): each part answered, stored together.
            hour2 = _local(2)
            for pno, values in ((1, {"a21005": {"Avg": 0.9, "Flag": "N"}}), (2, {"a34002": {"Avg": 120000, "Flag": "N"}})):
                part = station.segment("2061", data_cp(hour2, values), at=now + timedelta(milliseconds=pno), flag=7, pnum=2, pno=pno)
                assert _fields(await station.send(frame(part))).cn == "9014"
            # A notice (time calibration request) gets 9013; another upload (2021 status) 9014; an answer gets nothing.
            assert _fields(await station.send(frame(station.segment("1013", "PolId=a21026", at=now)))).cn == "9013"
            assert _fields(await station.send(frame(station.segment("2021", "DataTime=20261201000000;SB1-RS=1", at=now)))).cn == "9014"
            assert await station.send(frame(station.segment("9014", "", at=now, flag=4)), answer=False) is None
            # A command only the platform sends: refused with QnRtn=8 (CN 错误).
            assert _fields(await station.send(frame(station.segment("1062", "RtdInterval=30", at=now)))).cp == "QnRtn=8"
            # Bad frames: wrong password -> QnRtn=3; wrong CRC, garbage, a lying length -> dropped, the connection lives on.
            assert _fields(await station.send(frame(station.segment("2011", data_cp(now, {"a21026": {"Rtd": 9.9}}), at=now, password="000000")))).cp == "QnRtn=3"
            await station.send(frame(station.segment("2011", data_cp(now, {"a21026": {"Rtd": 9.9}}), at=now), crc=0x1234), answer=False)
            await station.send(b"\x00\xffGARBAGE##12" + b"##0009QN=1;ST=\r\n", answer=False)
            assert await station.no_answer()
            assert _fields(await station.send(frame(station.segment("2011", data_cp(now, {"a21026": {"Rtd": 0.2, "Flag": "N"}}), at=now)))).cn == "9014"
            # A station the platform does not know: QnRtn=4 (MN 错误).
        async with StationSim("FFFF00000000000000000000", PW, port=port) as stranger:
            assert _fields(await stranger.send(frame(stranger.segment("2011", "DataTime=20261201000000", at=datetime.now())))).cp == "QnRtn=4"
        # An old data logger with Modbus CRCs, allowed for this station only.
        async with StationSim(LEGACY_MN, PW, port=port) as legacy:
            segment = legacy.segment("2061", data_cp(_local(), {"a21026": {"Avg": 0.35, "Flag": "N"}}), at=datetime.now())
            assert _fields(await legacy.send(frame(segment, crc=protocol.modbus_crc16(segment.encode())))).cn == "9014"
        async with StationSim(MN, PW, port=port) as strict:
            segment = strict.segment("2061", data_cp(_local(3), {"a21026": {"Avg": 0.35, "Flag": "N"}}), at=datetime.now())
            await strict.send(frame(segment, crc=protocol.modbus_crc16(segment.encode())), answer=False)
            assert await strict.no_answer()  # strict by default: a Modbus CRC is a wrong CRC

        alarms = (await _get(hj212_service, admin, "/v1/alarms"))["alarms"]
        by_source = {(a["type"], a["source"]): a for a in alarms}
        exceed = by_source[("emission_exceedance", f"sensor:{ids[MN]}/a21026/hour")]
        assert (exceed["data"]["value"], exceed["data"]["limit"], exceed["data"]["period"], exceed["count"]) == (0.62, 0.5, "hour", 1)
        fault = by_source[("station_fault", f"sensor:{ids[MN]}/a21002")]
        assert (fault["data"]["flag"], fault["data"]["meaning"]) == ("D", "fault")
        legacy_exceed = by_source[("emission_exceedance", f"sensor:{ids[LEGACY_MN]}/a21026/hour")]  # the station's own limit 0.3
        assert legacy_exceed["data"]["limit"] == 0.3
        assert {k for k in by_source if k[0] in ("emission_exceedance", "station_fault")} == {
            ("emission_exceedance", f"sensor:{ids[MN]}/a21026/hour"), ("station_fault", f"sensor:{ids[MN]}/a21002"),
            ("emission_exceedance", f"sensor:{ids[LEGACY_MN]}/a21026/hour")}  # PM10 120,000 ng/m3 is within 150,000 (and no day limit applies to an hour)
        records = (await _get(hj212_service, admin, f"/v1/sensors/{ids[MN]}/emissions", cn="2061"))["records"]
        assert sorted((r["pollutant"], r["values"].get("Avg")) for r in records) == [("a21005", 0.9), ("a21026", 0.62), ("a34002", 120000.0)]
        assert all(r["flag"] == "N" for r in records)

    asyncio.run(scenario())


def test_resent_data_is_stored_once_and_alarm_notices_stream_live(stations: tuple[World, dict[str, int]], hj212_service: ServiceProcess) -> None:
    world, ids = stations
    port = hj212_service.hj212_port  # type: ignore[attr-defined]

    async def scenario() -> None:
        notices: list[dict[str, Any]] = []
        ready = asyncio.Event()

        async def listen() -> None:
            async with httpx.AsyncClient(base_url=hj212_service.url, timeout=None) as client:
                async with client.stream("GET", "/v1/alarms/stream", headers={"Authorization": f"Bearer {world.tokens['admin_a']}"}) as stream:
                    event = ""
                    async for line in stream.aiter_lines():
                        if line.startswith("event:"):
                            event = line.split(":", 1)[1].strip()
                            ready.set()
                        elif line.startswith("data:") and event == "alarm":
                            notices.append(json.loads(line.split(":", 1)[1]))

        listener = asyncio.create_task(listen())
        await asyncio.wait_for(ready.wait(), 10)
        async with StationSim(MN, PW, port=port) as station:
            segment = station.segment("2061", data_cp(_local(), {"a21026": {"Avg": 0.7, "Flag": "N"}}), at=datetime.now())
            for _ in range(3):  # a station that missed our answer sends the same message again
                _fields(await station.send(frame(segment)))
        for _ in range(100):
            if notices:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        listener.cancel()
        assert [(n["event"], n["alarm"]["type"], n["alarm"]["count"]) for n in notices] == [("raised", "emission_exceedance", 1)]
        records = (await _get(hj212_service, world.tokens["admin_a"], f"/v1/sensors/{ids[MN]}/emissions"))["records"]
        assert len(records) == 1

    asyncio.run(scenario())


def test_the_station_simulator_command(stations: tuple[World, dict[str, int]], hj212_service: ServiceProcess) -> None:
    from typer.testing import CliRunner

    from door_firmware_bridge.cli import app

    port = str(hj212_service.hj212_port)  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, ["sensors", "simulate-hj212", "--mn", MN, "--pw", PW, "--port", port, "--cn", "2061", "--so2", "0.62"])
    assert result.exit_code == 0, result.output
    answer = result.output.split("answer: ", 1)[1].strip()
    assert protocol.parse(answer.encode() + b"\r\n").cn == "9014"
    wrong = CliRunner().invoke(app, ["sensors", "simulate-hj212", "--mn", MN, "--pw", "nope", "--port", port])
    assert "QnRtn=3" in wrong.output



def test_emission_records_are_kept_their_legal_period_then_pruned(stations: tuple[World, dict[str, int]], ctx: AppContext) -> None:
    _, ids = stations
    now = utcnow()
    with ctx.db.session() as s:
        for cn, days in (("2011", 31), ("2011", 5), ("2061", 1828), ("2061", 1826), ("2031", 2000)):
            s.add(EmissionRecord(sensor_id=ids[MN], cn=cn, data_time=now - timedelta(days=days), pollutant="a21026", values={"Avg": 0.1}))

    def prune(dry_run: bool) -> dict[str, int]:
        with ctx.db.session() as s:
            return retention.prune(s, now, keep_days=Settings().emission_keep_days, real_time_keep_days=30, dry_run=dry_run)

    assert prune(dry_run=True) == {"real_time_deleted": 1, "aggregates_deleted": 2}  # a dry run counts and keeps
    assert prune(dry_run=False) == {"real_time_deleted": 1, "aggregates_deleted": 2}
    with ctx.db.session() as s:
        kept = {(r.cn, round((now - r.data_time).total_seconds() / 86400)) for r in s.query(EmissionRecord).filter_by(sensor_id=ids[MN])}
    assert kept == {("2011", 5), ("2061", 1826)}
    assert prune(dry_run=False) == {"real_time_deleted": 0, "aggregates_deleted": 0}
    with pytest.raises(ValidationError):  # five years is the legal floor for the aggregates
        Settings(emission_keep_days=365)
