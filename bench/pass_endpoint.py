"""The device verify endpoint under load, as a ratio to a trivial FastAPI endpoint in the same run.

    .venv/bin/python bench/pass_endpoint.py [--seconds 10] [--connections 16] [--passes 15000] [--database-url URL]

Both run as one uvicorn worker with httptools + uvloop, started here side by side, loaded in turn
by the same generator (asyncio, keep-alive connections, this process). The trivial endpoint parses the
same JSON body and returns a small JSON answer. The real one is POST /v1/device/verify with a device
key: device authentication, pass identification, the registry's grant check, the decision journalled
and batched into the audit trail. It is measured two ways, named in the output:

- ``first_sight``: every request a pass the server has not seen (``--passes`` issued up front), so
  each one is verified in full (signature, claims, the pass looked up in the database once);
- ``repeat``: the same pass again and again (most of a door's day), where the server's memory of
  verified pass bytes skips the signature check; one request in ten is a revoked pass.

A response counts only when it is HTTP 200 and its JSON says the expected decision (``allow`` true
for a valid pass, false for the revoked one); anything else is counted in ``*_wrong``. Load
alternates between the three in 1-second slices; the medians over slices of requests per second and
of p50/p99 latency are printed, plus each one's p50 latency with a single connection (no queueing).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def trivial_app() -> FastAPI:
    """The baseline: FastAPI's own cost for a small JSON request and answer."""
    from fastapi.responses import ORJSONResponse

    app = FastAPI(default_response_class=ORJSONResponse)

    @app.post("/v1/device/verify")
    async def verify(request: Request) -> dict[str, object]:
        body = await request.json()
        return {"decision": "allow", "allow": True, "door_id": body["door_id"], "reasons": []}

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(target: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", target, "--factory", "--port", str(port), "--workers", "1",
               "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{target} did not start")


Probe = tuple[bytes, bool]  # the HTTP request and the decision it must get (allow true or false)


async def _connection(port: int, requests: Iterator[Probe], stop_at: float, latencies: list[float], wrong: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            item = next(requests, None)
            if item is None:  # the first-sight pool is used up
                return
            request, expected = item
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            body = await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200") and _allow(body) is expected:
                latencies.append(time.perf_counter() - start)
            else:
                wrong.append(1)
    finally:
        writer.close()


def _allow(body: bytes) -> bool | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer.get("allow") if isinstance(answer, dict) and isinstance(answer.get("allow"), bool) else None


def load(port: int, requests: Iterator[Probe], seconds: float, connections: int) -> dict[str, float]:
    """Requests with the expected decision per second; a wrong or failed answer does not count as one."""
    latencies: list[float] = []
    wrong: list[int] = []

    async def run() -> None:
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, requests, stop_at, latencies, wrong) for _ in range(connections)))

    started = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "req_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan"),
        "wrong": len(wrong),
        "requests": len(latencies) + len(wrong),
    }


def http_request(path: str, body: dict[str, object], token: str | None) -> bytes:
    payload = json.dumps(body).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload


@dataclass
class Prepared:
    env: dict[str, str]
    repeat: list[Probe]  # nine valid, one revoked: cycled
    first_sight: list[Probe]  # each used once


def prepare(workdir: Path, database_url: str | None, passes: int) -> Prepared:
    """A migrated database with the test world, ``passes`` distinct passes for tenant 1 (first sight),
    one more shown again and again, one revoked, and the device key of door 1."""
    from bench.pass_verify import make_context
    from idsvc.auth.principal import OPERATOR
    from idsvc.passes import issuing
    from idsvc.registry.models import Status
    from tests.world import build_world

    ctx = make_context(workdir, database_url)
    world = build_world(ctx)
    door, token = world.ids["door1"], world.tokens["device1"]

    def verify(text: str) -> bytes:
        return http_request("/v1/device/verify", {"door_id": door, "qr_text": text}, token)

    with ctx.db.session() as s:
        fresh = [issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]).text for _ in range(passes)]
        shown_again = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]).text
        revoked = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])
    with ctx.db.session() as s:
        issuing.change_status(s, OPERATOR, revoked.row.id, Status.revoked, "benchmark: must be denied")
    env = {"IDSVC_DATABASE_URL": ctx.settings.effective_database_url, "IDSVC_DATA_DIR": str(workdir), "IDSVC_REDIS_URL": ""}
    ctx.close()
    return Prepared(env, [(verify(shown_again), True)] * 9 + [(verify(revoked.text), False)], [(verify(text), True) for text in fresh])


def _summary(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in ("req_per_s", "p50_ms", "p99_ms")} | {
        "wrong": sum(r["wrong"] for r in runs), "requests": sum(r["requests"] for r in runs), "slices": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per endpoint, in 1-second slices")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--passes", type=int, default=15000, help="distinct passes for the first-sight load")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        prepared = prepare(Path(tmp), args.database_url, args.passes)
        prepare_s = time.perf_counter() - started
        first_sight = iter(prepared.first_sight)
        trivial = http_request("/v1/device/verify", {"door_id": 1, "qr_text": "NH1:" + "A" * 330}, None)
        loads: dict[str, tuple[str, Callable[[], Iterator[Probe]]]] = {
            "trivial": ("trivial", lambda: itertools.repeat((trivial, True))),
            "repeat": ("device_verify", lambda: itertools.cycle(prepared.repeat)),
            "first_sight": ("device_verify", lambda: first_sight),
        }
        servers = {name: start_server(target, prepared.env) for name, target in
                   {"trivial": "bench.pass_endpoint:trivial_app", "device_verify": "idsvc.app:create_app"}.items()}
        try:
            for name in ("trivial", "repeat"):
                load(servers[loads[name][0]][1], loads[name][1](), 1.0, args.connections)  # warm up
            single = {name: load(servers[server][1], requests(), 1.0, 1) for name, (server, requests) in loads.items()}
            # Alternate 1-second slices: load spikes on this shared machine hit all three alike.
            slices: dict[str, list[dict[str, float]]] = {name: [] for name in loads}
            for _ in range(max(1, round(args.seconds))):
                for name, (server, requests) in loads.items():
                    result = load(servers[server][1], requests(), 1.0, args.connections)
                    if result["requests"]:
                        slices[name].append(result)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait()
    med = {name: _summary(runs) for name, runs in slices.items() if runs}
    base = med["trivial"]
    print(
        json.dumps(
            {
                "connections": args.connections,
                "database": "sqlite" if not args.database_url else args.database_url.split("://")[0],
                "first_sight_passes_issued": args.passes,
                "prepare_s": round(prepare_s, 1),
                **{f"{name}_{k}": round(v, 2) for name, values in med.items() for k, v in values.items()},
                **{f"ratio_{name}_req_per_s": round(med[name]["req_per_s"] / base["req_per_s"], 3) for name in ("repeat", "first_sight") if name in med},
                **{f"ratio_{name}_p50": round(base["p50_ms"] / med[name]["p50_ms"], 3) for name in ("repeat", "first_sight") if name in med},
                **{f"{name}_single_connection_p50_ms": round(v["p50_ms"], 3) for name, v in single.items()},
                "single_connection_wrong": sum(v["wrong"] for v in single.values()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
