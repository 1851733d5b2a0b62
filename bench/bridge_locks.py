"""One bridge driving 200 simulated MQTT locks with steady scans: decisions per second, scan-to-unlock.

    .venv/bin/python bench/bridge_locks.py [--locks 200] [--interval 2] [--seconds 20]

The bridge runs as its own process (`python -m door_firmware_bridge run`), exactly as deployed, on
the machine's Mosquitto; the locks run in this process. Each lock scans a valid static pass every
``interval`` seconds (random phase), so the offered load is locks / interval scans per second.
Decisions are offline (the verified sync feed), or with ``--online`` by a service process (one
uvicorn worker, SQLite) through POST /v1/device/verify; the service's own ceiling is measured by
bench/pass_endpoint.py. Scan-to-unlock is timed at the lock, from publishing the scan to receiving
the unlock command: broker both ways, decision, the fsynced journal entry, the expiring command.

Every scan shows a pass of its own, so each scan is followed by id: scan -> its pass id -> the
decision that names it (the bridge's journal offline, the service's audit trail online) -> the
command carrying that decision id at that lock. A scan with no decision, or an allow whose command
never reached its lock, is counted as lost (a late command is never credited to a later scan).
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
from sqlalchemy import select

from door_firmware_bridge.config import to_toml
from door_firmware_bridge.journal import Journal
from door_firmware_bridge.simulators.lock import LockSim
from door_firmware_bridge.simulators.site import Site
from idsvc.audit.models import AuditEvent
from idsvc.passes import codec
from idsvc.passes.claims import parse_claims


def passes_for(site: Site, count: int) -> list[tuple[str, str]]:
    """``count`` distinct tenant passes as (QR text, pass id hex), issued before the feed is written."""
    issued = []
    for _ in range(count):
        _, text = site.issue_pass("tenant")
        issued.append((text, parse_claims(codec.parse_sign1(codec.decode_text(text)).payload).pass_id.hex()))
    return issued


def decisions_by_pass(site: Site, journal_path: Path) -> dict[str, tuple[str, bool]]:
    """pass id -> (decision id, allowed), from the bridge's journal and (online) the service's audit trail."""
    journal = Journal(journal_path)
    decided = {e.data["decision_id"]: e.kind == "access_granted" for e in journal.entries() if e.kind.startswith("access_")}
    by_pass = {e.data["versions"]["pass_id"]: e.data["decision_id"] for e in journal.entries()
               if e.kind.startswith("access_") and e.data.get("versions", {}).get("pass_id")}
    journal.close()
    with site.ctx.db.session() as s:
        for data in s.scalars(select(AuditEvent.data).where(AuditEvent.kind == "decision")):
            if data.get("pass_id") and data.get("decision_id") in decided:
                by_pass.setdefault(data["pass_id"], data["decision_id"])
    return {pass_id: (decision_id, decided[decision_id]) for pass_id, decision_id in by_pass.items()}


async def run(locks: int, interval: float, seconds: float, workdir: Path, online: bool) -> None:
    site, env = seeded(workdir)
    door_ids = site.add_doors(locks)  # granted to the tenant, so the feed's grants open them
    per_lock = int(seconds / interval) + 2
    issued = passes_for(site, locks * per_lock)
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
    bridge = subprocess.Popen([sys.executable, "-m", "door_firmware_bridge", "run", "--config", str(path), "--log-level", "warning"],  # noqa: ASYNC220 (once, before timing)
                              cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
    try:
        async with aiomqtt.Client("127.0.0.1", 1883) as watcher:
            await watcher.subscribe(f"acs/v1/{prefix}/bridge/availability")
            async for message in watcher.messages:
                if message.payload == b"online":
                    break
        await asyncio.sleep(2)  # the first feed load and subscriptions settle

        shown: dict[str, list[tuple[str, float]]] = {s.base: [] for s in sims}  # lock -> (pass id, scan time)

        async def scanning(sim: LockSim, own: list[tuple[str, str]], stop_at: float) -> None:
            await asyncio.sleep(random.uniform(0, interval))
            for text, pass_id in own:
                if time.monotonic() >= stop_at:
                    return
                await sim.scan(text)
                shown[sim.base].append((pass_id, sim.scans[-1]))
                await asyncio.sleep(interval)

        started = time.monotonic()
        await asyncio.gather(*(scanning(s, issued[i * per_lock:(i + 1) * per_lock], started + seconds) for i, s in enumerate(sims)))
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
    by_pass = decisions_by_pass(site, cfg.journal.path)
    latencies: list[float] = []
    undecided = denied = lost = 0
    for sim in sims:
        commands = {r.payload.get("decision_id"): r.at for r in sim.received}
        for pass_id, scanned_at in shown[sim.base]:
            decision = by_pass.get(pass_id)
            if decision is None:
                undecided += 1
            elif not decision[1]:
                denied += 1
            elif decision[0] in commands:
                latencies.append(commands[decision[0]] - scanned_at)
            else:
                lost += 1
    scans = sum(len(v) for v in shown.values())
    decided = len(by_pass)
    print(f"{locks} locks, one scan each every {interval:g} s for {seconds:g} s: offered {locks / interval:.0f} scans/s, {scans} scans (one pass each)")
    print(f"decisions        {decided / seconds:7.1f} /s   ({decided - denied} allowed, {denied} denied)")
    print(f"lost, by scan id {undecided} scans without a decision, {lost} allows whose command never reached the lock")
    print(f"scan-to-unlock   {percentiles(latencies)}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the bridge (and with --online the service)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"child CPU        {cpu:.1f} s in all, {cpu / max(1, decided) * 1000:.2f} ms per decision (start-up included)")


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
