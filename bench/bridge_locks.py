"""One bridge driving 200 simulated MQTT locks with steady scans: decisions per second, scan-to-unlock.

    .venv/bin/python bench/bridge_locks.py [--locks 200] [--interval 2] [--seconds 20]

The bridge runs as its own process (`python -m door_firmware_bridge run`), exactly as deployed, on
the machine's Mosquitto; the locks run in this process. Each lock scans a valid static pass every
``interval`` seconds (random phase), so the offered load is locks / interval scans per second.
Decisions are offline (the verified sync feed), or with ``--online`` by a service process (one
uvicorn worker, SQLite) through POST /v1/device/verify; the service's own ceiling is measured by
bench/pass_endpoint.py. Scan-to-unlock is timed at the lock, from publishing the scan to receiving
the unlock command: broker both ways, decision, the fsynced journal entry, the expiring command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
from bridge_common import REPO, config, percentiles, seeded, service

from door_firmware_bridge.config import to_toml
from door_firmware_bridge.journal import Journal
from door_firmware_bridge.simulators.lock import LockSim


async def run(locks: int, interval: float, seconds: float, workdir: Path, online: bool) -> None:
    site, env = seeded(workdir)
    door_ids = site.add_doors(locks)  # granted to the tenant, so the feed's grants open them
    site.write_feed(workdir / "feed")
    prefix = f"bench{secrets.token_hex(3)}"
    doors = [{"name": f"lock-{i:03d}", "door_id": door_id, "site_id": site.ids["site"], "pulse_s": 1.0, "ack_timeout_s": 3.0, "command_ttl_s": 5.0}
             for i, door_id in enumerate(door_ids)]
    service_process, url = service(env) if online else (None, "http://127.0.0.1:9")
    cfg = config(site, workdir, url, doors=doors, prefix=prefix, broker={"client_id": f"bridge-{prefix}"})
    path = workdir / "site.toml"
    path.write_text(to_toml(cfg.model_dump(mode="json", exclude_none=True)))
    sims = [LockSim(prefix, d["name"]) for d in doors]
    tasks = [asyncio.create_task(s.run()) for s in sims]
    await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in sims)), 60)
    bridge = subprocess.Popen([sys.executable, "-m", "door_firmware_bridge", "run", "--config", str(path), "--log-level", "warning"],
                              cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
    try:
        async with aiomqtt.Client("127.0.0.1", 1883) as watcher:
            await watcher.subscribe(f"acs/v1/{prefix}/bridge/availability")
            async for message in watcher.messages:
                if message.payload == b"online":
                    break
        await asyncio.sleep(2)  # the first feed load and subscriptions settle

        async def scanning(sim: LockSim, stop_at: float) -> None:
            await asyncio.sleep(random.uniform(0, interval))
            while time.monotonic() < stop_at:
                await sim.scan(site.tenant_pass)
                await asyncio.sleep(interval)

        started = time.monotonic()
        await asyncio.gather(*(scanning(s, started + seconds) for s in sims))
        await asyncio.sleep(5)  # the last commands arrive
    finally:
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(30)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if service_process is not None:
            service_process.terminate()
            service_process.wait()
    latencies, unanswered = [], 0
    for sim in sims:
        commands = [r.at for r in sim.received]
        for scan in sim.scans:
            after = [at for at in commands if at >= scan]
            if after:
                latencies.append(after[0] - scan)
            else:
                unanswered += 1
    journal = Journal(cfg.journal.path)
    decided = [e for e in journal.entries() if e.kind.startswith("access_")]
    journal.close()
    granted = sum(e.kind == "access_granted" for e in decided)
    scans = sum(len(s.scans) for s in sims)
    sources = sorted({e.data["source"] for e in decided})
    print(f"{locks} locks, one scan each every {interval:g} s for {seconds:g} s: offered {locks / interval:.0f} scans/s, {scans} scans, decided {'/'.join(sources)}")
    print(f"decisions        {len(decided) / seconds:7.1f} /s   ({granted} allowed, {len(decided) - granted} denied, {unanswered} scans without unlock)")
    print(f"scan-to-unlock   {percentiles(latencies)}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the bridge (and with --online the service)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"child CPU        {cpu:.1f} s in all, {cpu / max(1, len(decided)) * 1000:.2f} ms per decision (start-up included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locks", type=int, default=200)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between two scans at one lock")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--online", action="store_true", help="decide through a service process instead of the offline feed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.locks, args.interval, args.seconds, Path(tmp), args.online))


if __name__ == "__main__":
    main()
