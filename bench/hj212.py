"""HJ 212-2017: frames parsed per second on one core, and the time from a station's frame to the alarm notice.

    .venv/bin/python bench/hj212.py [--seconds 3] [--notices 40]

1. Parsing: ``protocol.parse`` + ``protocol.parse_cp`` (CRC check, header, data area) of three
   frames: Appendix A's example, a real-time message with six pollutants (CN 2011) and an hour
   message with six pollutants and Min/Avg/Max/Flag each (CN 2061). The process is pinned to one
   CPU. Baseline in the same run: the same parse with the CRC computed bit by bit as Appendix A
   words it (the station simulator's implementation), to show what the table-driven CRC buys.
2. End to end: a service process (SQLite, embedded store) with ``IDSVC_HJ212_PORT``; a registered
   station sends hour data whose SO2 mean is alternately above and below 0.5 mg/m3, one frame at a
   time; each one raises or clears the exceedance alarm. Measured: from writing the frame to the
   ``event: alarm`` line on ``GET /v1/alarms/stream``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bridge_common import percentiles, service
from bench.pass_verify import make_context
from door_firmware_bridge.sensors.hj212_station import StationSim, appendix_a_crc, data_cp, frame
from idsvc.alarms import sensors
from idsvc.alarms.hj212 import protocol
from idsvc.alarms.models import SensorFamily, SensorKind
from idsvc.auth.principal import OPERATOR
from tests.bridge.conftest import free_port
from tests.world import build_world

MN, PW = "0300A1B2C3D4E5F601234567", "246810"
POLLUTANTS = ["a21026", "a21002", "a21005", "a05001", "a34002", "a34004"]


def sample_frames() -> dict[str, bytes]:
    now = datetime(2026, 12, 1, 20, 15, 30)
    realtime = data_cp(now, {code: {"Rtd": f"{12.34 + i:.2f}", "Flag": "N"} for i, code in enumerate(POLLUTANTS)})
    hour = data_cp(now.replace(minute=0, second=0), {code: {"Min": "1.10", "Avg": f"{2.2 + i:.2f}", "Max": "3.30", "Flag": "N"} for i, code in enumerate(POLLUTANTS)})
    station = StationSim(MN, PW)
    return {
        "Appendix A example (113 B)": frame("QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"),
        f"2011 real-time, 6 pollutants ({len(frame(station.segment('2011', realtime, at=now)))} B)": frame(station.segment("2011", realtime, at=now)),
        f"2061 hour, 6 pollutants x 4 ({len(frame(station.segment('2061', hour, at=now)))} B)": frame(station.segment("2061", hour, at=now)),
    }


def rate(raw: bytes, seconds: float, bitwise: bool) -> float:
    original = protocol.crc16
    if bitwise:
        protocol.crc16 = appendix_a_crc  # type: ignore[assignment]
    try:
        parse, parse_cp = protocol.parse, protocol.parse_cp
        count, start = 0, time.perf_counter()
        while True:
            for _ in range(500):
                parse_cp(parse(raw).cp)
            count += 500
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return count / elapsed
    finally:
        protocol.crc16 = original  # type: ignore[assignment]


async def end_to_end(url: str, token: str, hj212_port: int, notices: int) -> list[float]:
    events: asyncio.Queue[float] = asyncio.Queue()
    ready = asyncio.Event()

    async def listen() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=None) as client, client.stream("GET", "/v1/alarms/stream", headers={"Authorization": f"Bearer {token}"}) as stream:
            event = ""
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                    ready.set()
                elif line.startswith("data:") and event == "alarm" and json.loads(line[5:])["event"] in ("raised", "cleared"):
                    events.put_nowait(time.perf_counter())

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 10)
    took = []
    start_hour = datetime.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=notices + 2)
    async with StationSim(MN, PW, port=hj212_port) as station:
        for n in range(notices + 5):  # the first five warm up the path
            value = 0.7 if n % 2 == 0 else 0.2
            raw = frame(station.segment("2061", data_cp(start_hour + timedelta(hours=n), {"a21026": {"Avg": value, "Flag": "N"}}), at=datetime.now()))
            sent = time.perf_counter()
            await station.send(raw)
            seen = await asyncio.wait_for(events.get(), 10)
            if n >= 5:
                took.append(seen - sent)
    listener.cancel()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per frame and candidate")
    parser.add_argument("--notices", type=int, default=40, help="frames sent end to end")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print("frames parsed per second (parse + data area, one core):")
    for name, raw in sample_frames().items():
        fast, slow = rate(raw, args.seconds, bitwise=False), rate(raw, args.seconds, bitwise=True)
        print(f"  {name:<38} {fast:>9,.0f}/s   bit-by-bit CRC baseline {slow:>8,.0f}/s   x{fast / slow:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ctx = make_context(workdir)
        world = build_world(ctx)
        with ctx.db.session() as s:
            sensors.create(s, ctx.sealer, OPERATOR, sensors.NewSensor(site_id=world.ids["site_a"], building_id=world.ids["building_a"], code=MN, name="bench station",
                                                                      family=SensorFamily.hj212, kind=SensorKind.emission_station, password=PW))
        hj212_port = free_port()
        env = {"IDSVC_DATABASE_URL": ctx.settings.effective_database_url, "IDSVC_DATA_DIR": str(workdir), "IDSVC_REDIS_URL": "", "IDSVC_HJ212_PORT": str(hj212_port)}
        ctx.close()
        process, url = service(env)
        try:
            took = asyncio.run(end_to_end(url, world.tokens["admin_a"], hj212_port, args.notices))
        finally:
            process.terminate()
            process.wait(10)
    print(f"frame -> alarm notice on the live stream (SQLite, one service process): {percentiles(took)}")


if __name__ == "__main__":
    main()
