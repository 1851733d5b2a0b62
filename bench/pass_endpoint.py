"""The device verify endpoint under load, as a ratio to a trivial FastAPI endpoint in the same run.

    .venv/bin/python bench/pass_endpoint.py [--seconds 10] [--connections 16] [--database-url URL]

Both run as one uvicorn worker with httptools + uvloop, started here side by side, loaded in turn
by the same generator (asyncio, keep-alive connections, this process). The trivial endpoint parses the
same JSON body and returns a small JSON answer. The real one is POST /v1/device/verify with a device
key and a valid static pass: device authentication (database), pass identification (in process),
the registry's grant check (database), the decision journalled and batched into the audit trail.
Load alternates between the two in 1-second slices; the medians over slices of requests per second
and of p50/p99 latency are printed, plus each one's p50 latency with a single connection (no
queueing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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
        return {"decision": "allow", "door_id": body["door_id"], "reasons": []}

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


async def _connection(port: int, request: bytes, stop_at: float, latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200") or b'"allow"' not in body:
                errors.append(1)
    finally:
        writer.close()


def load(port: int, request: bytes, seconds: float, connections: int) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []

    async def run() -> None:
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, request, stop_at, latencies, errors) for _ in range(connections)))

    started = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "req_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": len(errors),
    }


def http_request(path: str, body: dict[str, object], token: str | None) -> bytes:
    payload = json.dumps(body).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload


def prepare(workdir: Path, database_url: str | None) -> tuple[dict[str, str], bytes]:
    """A migrated database with the test world, a pass for tenant 1 and the device key of door 1."""
    from bench.pass_verify import make_context
    from idsvc.auth.principal import OPERATOR
    from idsvc.passes import issuing
    from tests.world import build_world

    ctx = make_context(workdir, database_url)
    world = build_world(ctx)
    with ctx.db.session() as s:
        text = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]).text
    env = {"IDSVC_DATABASE_URL": ctx.settings.effective_database_url, "IDSVC_DATA_DIR": str(workdir), "IDSVC_REDIS_URL": ""}
    ctx.close()
    return env, http_request("/v1/device/verify", {"door_id": world.ids["door1"], "qr_text": text}, world.tokens["device1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per endpoint, in 1-second slices")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env, real_request = prepare(Path(tmp), args.database_url)
        trivial_request = http_request("/v1/device/verify", {"door_id": 1, "qr_text": "NH1:" + "A" * 330}, None)
        targets = {"trivial": ("bench.pass_endpoint:trivial_app", trivial_request), "device_verify": ("idsvc.app:create_app", real_request)}
        servers = {name: start_server(target, env) for name, (target, _) in targets.items()}
        try:
            for name, (_, request) in targets.items():
                load(servers[name][1], request, 1.0, args.connections)  # warm up
            single = {name: load(servers[name][1], request, 2.0, 1) for name, (_, request) in targets.items()}
            # Alternate 1-second slices: load spikes on this shared machine hit both endpoints alike.
            slices: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for _ in range(max(1, round(args.seconds))):
                for name, (_, request) in targets.items():
                    slices[name].append(load(servers[name][1], request, 1.0, args.connections))
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait()
    med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in slices.items()}
    print(
        json.dumps(
            {
                "connections": args.connections,
                "database": "sqlite" if not args.database_url else args.database_url.split("://")[0],
                "slices": len(slices["trivial"]),
                **{f"{name}_{k}": round(v, 2) for name, values in med.items() for k, v in values.items()},
                "ratio_req_per_s": round(med["device_verify"]["req_per_s"] / med["trivial"]["req_per_s"], 3),
                "ratio_p50": round(med["trivial"]["p50_ms"] / med["device_verify"]["p50_ms"], 3),
                "ratio_p99": round(med["trivial"]["p99_ms"] / med["device_verify"]["p99_ms"], 3),
                **{f"{name}_single_connection_p50_ms": round(v["p50_ms"], 3) for name, v in single.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
