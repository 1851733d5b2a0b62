"""The long fault-injection run: a simulated population at a door of a served node while faults are injected.

    .venv/bin/python bench/chaos.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/0 [--phase-seconds 15] [--rate 100]

The node is `uvicorn idsvc.app:create_app` in its own process, reaching PostgreSQL and Redis through
fault proxies this script owns (tests/netfaults.py; the servers themselves are never touched). The
population (tests/chaos.py: tenants, phone codes and their replays, codes from a skewed clock,
strangers, revoked, expired and forged passes) asks door 1's lock, one request at a time and at most
--rate a second, through these phases:

    normal, database black-holed, healed, database cut, healed, Redis black-holed, healed,
    node killed with SIGKILL mid-load and started again (as systemd's Restart=always would), normal

and prints, per phase and in total, the answers, and the invariants: wrongful opens (an allow for an
attempt that may not open), 500s, decisions answered to the lock but missing from the audit trail
after the run, and how long each recovery took (from the heal to the next tenant let in). Without
--database-url it runs on SQLite with the Redis and database phases left out (there is no network to
fault). The short form of the same suite runs in CI: tests/reliability/test_chaos.py.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from idsvc.config import Settings
from idsvc.context import AppContext
from tests.chaos import Attempt, Population, Tally, build_population, lost_decisions
from tests.databases import scratch_database
from tests.netfaults import FaultProxy
from tests.world import build_world


class Node:
    """The service in its own process, on the proxied database and Redis."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.workdir = os.environ | env | {"PYTHONPATH": str(REPO)}, workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.workdir / "node.log", "ab") as log:  # the node's warnings while faulted: kept out of the figures
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "idsvc.app:create_app", "--factory", "--port", str(self.port), "--log-level", "critical", "--no-access-log"],
                cwd=self.workdir, env=self.env, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the node did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # flushes the decision log
            self.process.wait(30)


def poster(node: Node, population: Population) -> Callable[[Attempt], tuple[int | None, dict[str, Any] | None]]:
    client = httpx.Client(timeout=15)

    def post(attempt: Attempt) -> tuple[int | None, dict[str, Any] | None]:
        try:
            answer = client.post(f"{node.url}/v1/device/verify", headers=population.lock_headers, json={"door_id": population.door_id, "qr_text": attempt.qr_text})
        except httpx.HTTPError:
            return None, None
        return answer.status_code, answer.json()

    return post


def run_phase(name: str, seconds: float, rate: float, post: Callable[[Attempt], Any], population: Population, tally: Tally, rng_seed: int,
              during: Callable[[], None] | None = None) -> tuple[Tally, float | None]:
    """Attempts for ``seconds``; ``during`` runs once halfway (a SIGKILL). Returns the phase's tally and
    the seconds to its first tenant let in (the recovery time after a heal)."""
    import random

    rng = random.Random(rng_seed)
    phase = Tally()
    started = time.monotonic()
    first_allow: float | None = None
    fired, started_recovery = during is None, started  # recovery is timed from the heal, or from ``during``
    deadline = started + seconds
    next_at = started
    while time.monotonic() < deadline:
        if not fired and time.monotonic() - started > seconds / 2:
            fired, started_recovery = True, time.monotonic()  # recovery is timed from the fault (the kill), restart included
            during()  # type: ignore[misc]
            deadline = max(deadline, time.monotonic() + seconds / 2)  # as long again after a slow restart
        for attempt in population.attempts(rng):  # a round takes well under a second
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at, time.monotonic() - 1.0) + 1.0 / rate
            status, body = post(attempt)
            phase.record(attempt, status, body)
            tally.record(attempt, status, body)
            if fired and first_allow is None and attempt.kind == "tenant" and status == 200 and body and body["allow"]:
                first_allow = time.monotonic() - started_recovery
    print(f"{name:<24} {sum(phase.answers.values()):>6} attempts  {dict(phase.answers)}  wrongful opens {len(phase.wrongful_opens)}"
          f"  first tenant in after {'-' if first_allow is None else f'{first_allow:.1f} s'}", flush=True)
    return phase, first_allow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL server to create a scratch database on (default: SQLite, no network faults)")
    parser.add_argument("--redis-url", default=None, help="Redis to use under a scratch prefix (default: none)")
    parser.add_argument("--phase-seconds", type=float, default=15.0)
    parser.add_argument("--tenants", type=int, default=24)
    parser.add_argument("--rate", type=float, default=100.0, help="attempts per second at most (a busy gate; phone codes last longer)")
    args = parser.parse_args()
    networked = bool(args.database_url) and bool(args.redis_url)
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.database_url, Path(tmp), prefix="idsvc_chaos") as url:
        workdir = Path(tmp)
        prefix = f"idsvc-chaos-{secrets.token_hex(4)}:"
        settings = Settings(database_url=url, redis_url=args.redis_url or "", redis_prefix=prefix, data_dir=workdir, master_key="", scheduler_enabled=False, _env_file=None)  # type: ignore[call-arg]
        ctx = AppContext.from_settings(settings)
        world = build_world(ctx)
        population = build_population(ctx, world, tenants=args.tenants, phones_per_tenant=8)
        env = {"IDSVC_DATA_DIR": str(workdir), "IDSVC_REDIS_PREFIX": prefix, "IDSVC_DB_TIMEOUT_S": "1", "IDSVC_REDIS_TIMEOUT_S": "0.5",
               "IDSVC_SCHEDULER_ENABLED": "false", "IDSVC_DATABASE_URL": url, "IDSVC_REDIS_URL": args.redis_url or ""}
        proxies: dict[str, FaultProxy] = {}
        if networked:
            db_url, redis_url = make_url(url), make_url(args.redis_url.replace("redis://", "postgresql://", 1))
            proxies = {"db": FaultProxy(db_url.host or "127.0.0.1", db_url.port or 5432), "redis": FaultProxy(redis_url.host or "127.0.0.1", redis_url.port or 6379)}
            env["IDSVC_DATABASE_URL"] = db_url.set(host="127.0.0.1", port=proxies["db"].port).render_as_string(hide_password=False)
            env["IDSVC_REDIS_URL"] = f"redis://127.0.0.1:{proxies['redis'].port}/{redis_url.database or 0}"
        node = Node(env, workdir)
        node.start()
        post = poster(node, population)
        total = Tally()
        recoveries: dict[str, float | None] = {}
        seconds = args.phase_seconds

        def restart() -> None:
            node.kill()
            node.start()

        try:
            run_phase("normal", seconds, args.rate, post, population, total, 1)
            if networked:
                for target, fault in (("db", "blackhole"), ("db", "cut"), ("redis", "blackhole")):
                    getattr(proxies[target], fault)()
                    run_phase(f"{target} {fault}", seconds, args.rate, post, population, total, 2)
                    proxies[target].heal()
                    _, recoveries[f"{target} {fault}"] = run_phase(f"  {target} healed", seconds, args.rate, post, population, total, 3)
            _, recoveries["SIGKILL + restart"] = run_phase("SIGKILL, restarted", seconds, args.rate, post, population, total, 4, during=restart)
            run_phase("normal", seconds, args.rate, post, population, total, 5)
        finally:
            node.stop()
            for proxy in proxies.values():
                proxy.close()
        # Journals left by the killed process were replayed when it started again; the last one flushed on stop.
        lost = lost_decisions(ctx, total.decided)
        print()
        print(f"attempts {sum(total.answers.values())}: {dict(total.answers)}")
        print(f"allows by kind: { {k: total.allows_of(k) for k in ('tenant', 'phone', 'replay', 'skewed', 'stranger', 'revoked', 'expired', 'forged')} }")
        print(f"wrongful opens: {len(total.wrongful_opens)}")
        print(f"500 answers: {total.server_errors}")
        print(f"decisions answered to the lock: {len(total.decided)}, missing from the audit trail: {len(lost)}")
        print("recovery (heal to first tenant in): " + ", ".join(f"{k} {'never' if v is None else f'{v:.1f} s'}" for k, v in recoveries.items()))
        ctx.kv.clear()
        ctx.close()
        if total.wrongful_opens or total.server_errors or lost or None in recoveries.values():
            raise SystemExit(1)


if __name__ == "__main__":
    main()
