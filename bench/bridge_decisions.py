"""Decision latency at the bridge: online (the service's device API over HTTP) vs offline (verified cache).

    .venv/bin/python bench/bridge_decisions.py [--n 300]

A seeded SQLite service runs as one uvicorn worker (httptools + uvloop). Each line times one static
tenant pass at the flat door, sequentially (no queueing):
- online: OnlineDecider -> POST /v1/device/verify (device key, identification, grant check, audit);
- offline, cache only: OfflineCache.decide_qr (COSE verify against the trust list, status list,
  scope, staleness);
- offline through the Decider with the service down (refused connection once, then skipped);
- a whole bridge transaction offline: decision + the fsynced journal entry (synchronous=FULL), the
  pulse refused at once because no lock is connected.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bridge_common import config, percentiles, seeded, service

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.decisions import Decider, OnlineDecider
from door_firmware_bridge.model import Presented, utcnow


async def timed(n: int, call) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(n):
        start = time.perf_counter()
        decision = await call()
        out.append(time.perf_counter() - start)
        assert decision is not None and decision.allow, decision
    return out


async def run(n: int, workdir: Path) -> None:
    site, env = seeded(workdir)
    site.write_feed(workdir / "feed")
    process, url = service(env)
    try:
        cfg = config(site, workdir, url)
        door = cfg.doors[0]
        online = OnlineDecider(cfg.service)
        await timed(20, lambda: online.qr(door, site.tenant_pass))  # warm-up: connections, caches
        print(f"online QR (HTTP, service up)          {percentiles(await timed(n, lambda: online.qr(door, site.tenant_pass)))}")
        await online.aclose()
    finally:
        process.terminate()
        process.wait()
    bridge = Bridge(cfg)
    assert bridge.offline is not None
    await bridge.refresh_feed()
    cache = bridge.offline
    at = utcnow()
    await timed(50, lambda: _ready(cache.decide_qr(door, site.tenant_pass, at)))
    print(f"offline QR, cache only                {percentiles(await timed(n * 10, lambda: _ready(cache.decide_qr(door, site.tenant_pass, utcnow()))))}")
    decider = Decider(OnlineDecider(cfg.service), cache)
    print(f"offline QR via Decider, service down  {percentiles(await timed(n, lambda: decider.decide(door, Presented(door.name, 'bench', qr=site.tenant_pass))))}")
    writer = asyncio.create_task(bridge.writer.run())
    transactions = []
    for _ in range(n):
        scan = Presented(door.name, "bench", qr=site.tenant_pass)
        start = time.perf_counter()
        done = await bridge.transaction(scan)
        transactions.append(time.perf_counter() - start)
        assert done is not None and done.decision.allow and done.outcome is not None and done.outcome.status == "not_sent"
    print(f"bridge transaction offline + journal  {percentiles(transactions)}")
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    await bridge.close()


async def _ready(value):  # noqa: ANN001, ANN202
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.n, Path(tmp)))


if __name__ == "__main__":
    main()
