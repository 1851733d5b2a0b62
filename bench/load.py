"""QR and face verification under load against a served node, as ratios to a trivial FastAPI endpoint.

    .venv/bin/python bench/load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/0 [--seconds 60] [--connections 16] [--face]

The node is `idsvc serve` (the real server options: bounded request heads, one worker, httptools)
on a scratch PostgreSQL database and a scratch Redis prefix, with the test world and a pass for
tenant 1; the baseline is bench/pass_endpoint.py's trivial endpoint (parses the same body, answers a
small JSON), served the same way in the same run. Each target is loaded for --seconds by keep-alive
connections from this process; printed per target: requests/s, p50/p99/p999 latency, errors (any
answer but 200 with a decision), and the node's resident memory sampled every second (start, max,
end). --face adds POST /v1/device/face-verify with a photo of tenant 1 enrolled from ../shared
(one connection per core: a face costs ~40 ms of inference). --workers 2 runs the node as two
processes (`idsvc serve --workers 2`): how throughput grows with processes on this machine.
Without --database-url: SQLite, no Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.chaos import scratch_database
from bench.pass_endpoint import http_request, start_server

SHARED_FACES = REPO.parent / "shared" / "data" / "faces"


def start_node(env: dict[str, str], workers: int = 1) -> tuple[subprocess.Popen[bytes], int]:
    """`idsvc serve` on a free port, as an operator runs it (bounded heads, proxies off)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen([sys.executable, "-m", "idsvc", "serve", "--port", str(port), "--workers", str(workers)], cwd=REPO,
                               env={**os.environ, **env, "IDSVC_LOG_LEVEL": "warning", "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("idsvc serve did not start")


def _rss_mb(pid: int) -> float:
    """Resident memory of the process and its children (the workers of `idsvc serve --workers N`)."""
    try:
        own = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:")) / 1024
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, StopIteration):
        return 0.0
    return own + sum(_rss_mb(int(child)) for child in children)


async def _connection(port: int, request: bytes, stop_at: float, latencies: list[float], errors: list[str]) -> None:
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
                errors.append(head.split(b"\r\n", 1)[0].decode())
    finally:
        writer.close()


def load(port: int, pid: int, request: bytes, seconds: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    rss: list[float] = [_rss_mb(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            rss.append(_rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def run() -> None:
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, request, stop_at, latencies, errors) for _ in range(connections)))

    started = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    rss.append(_rss_mb(pid))
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000, 2)

    return {
        "requests": len(latencies), "req_per_s": round(len(latencies) / elapsed, 1), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "p999_ms": pct(0.999),
        "errors": len(errors), "error_kinds": sorted(set(errors))[:3], "rss_mb_start": round(rss[0]), "rss_mb_max": round(max(rss)), "rss_mb_end": round(rss[-1]),
    }


def multipart(path: str, fields: dict[str, str], image: bytes, token: str | None) -> bytes:
    boundary = "idsvcbench" + secrets.token_hex(4)
    parts = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items())
    parts += f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="frame.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode() + image
    parts += f"\r\n--{boundary}--\r\n".encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = f"POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(parts)}\r\n\r\n"
    return head.encode() + parts


def prepare(workdir: Path, url: str, redis_url: str, prefix: str, face: bool) -> tuple[dict[str, str], dict[str, bytes]]:
    """The world, a pass for tenant 1 (and tenant 1's face on door 1); the node's environment and the requests."""
    from fastapi.testclient import TestClient

    from idsvc.app import create_app
    from idsvc.auth.principal import OPERATOR
    from idsvc.config import Settings
    from idsvc.context import AppContext
    from idsvc.passes import issuing
    from idsvc.registry.models import Door, FaceMode
    from tests.world import build_world

    settings = Settings(database_url=url, redis_url=redis_url, redis_prefix=prefix, data_dir=workdir, master_key="", scheduler_enabled=False, _env_file=None)  # type: ignore[call-arg]
    ctx = AppContext.from_settings(settings)
    world = build_world(ctx)
    with ctx.db.session() as s:
        text = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]).text
    requests = {"qr_verify": http_request("/v1/device/verify", {"door_id": world.ids["door1"], "qr_text": text}, world.tokens["device1"])}
    if face:
        admin = {"Authorization": f"Bearer {world.tokens['admin_a']}"}
        with TestClient(create_app(ctx)) as client:
            person = world.ids["tenant1"]
            client.post(f"/v1/people/{person}/face/consent", json={"method": "signed form", "text_version": "2026-11", "language": "zh-CN"}, headers=admin).raise_for_status()
            photos = [("images", (name, (SHARED_FACES / name).read_bytes(), "image/jpeg")) for name in ("img1.jpg", "img2.jpg")]
            client.put(f"/v1/people/{person}/face", files=photos, headers=admin).raise_for_status()
        with ctx.db.session() as s:
            s.get(Door, world.ids["door1"]).face_mode = FaceMode.face_only  # type: ignore[union-attr]
        requests["face_verify"] = multipart("/v1/device/face-verify", {"door_id": str(world.ids["door1"])}, (SHARED_FACES / "img4.jpg").read_bytes(), world.tokens["device1"])
    env = {"IDSVC_DATABASE_URL": url, "IDSVC_DATA_DIR": str(workdir), "IDSVC_REDIS_URL": redis_url, "IDSVC_REDIS_PREFIX": prefix, "IDSVC_SCHEDULER_ENABLED": "false"}
    ctx.close()
    return env, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL server for a scratch database (default: SQLite)")
    parser.add_argument("--redis-url", default="", help="Redis for a scratch prefix (default: none)")
    parser.add_argument("--seconds", type=float, default=60.0, help="load per target")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--face", action="store_true", help="also load face verification (needs ../shared photos and the face pack)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of the node (`idsvc serve --workers`; more than 1 needs PostgreSQL and Redis)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.database_url, Path(tmp)) as url:
        workdir = Path(tmp)
        prefix = f"idsvc-load-{secrets.token_hex(4)}:"
        env, requests = prepare(workdir, url, args.redis_url, prefix, args.face)
        trivial = http_request("/v1/device/verify", {"door_id": 1, "qr_text": "NH1:" + "A" * 330}, None)
        node, node_port = start_node(env, args.workers)
        baseline, baseline_port = start_server("bench.pass_endpoint:trivial_app", env)
        results: dict[str, Any] = {"database": url.split("://")[0].split("+")[0], "redis": bool(args.redis_url), "seconds": args.seconds, "connections": args.connections,
                                   "workers": args.workers}
        try:
            targets = [("trivial", baseline_port, baseline.pid, trivial, args.connections), ("qr_verify", node_port, node.pid, requests["qr_verify"], args.connections)]
            if "face_verify" in requests:
                targets.append(("face_verify", node_port, node.pid, requests["face_verify"], os.cpu_count() or 2))
            for name, port, pid, request, connections in targets:
                load(port, pid, request, 2.0, connections)  # warm up (caches, the face engine)
                results[name] = load(port, pid, request, args.seconds, connections)
                print(name, json.dumps(results[name]), flush=True)
        finally:
            for process in (node, baseline):
                process.terminate()
                process.wait()
        results["qr_ratio_req_per_s"] = round(results["qr_verify"]["req_per_s"] / results["trivial"]["req_per_s"], 3)
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
