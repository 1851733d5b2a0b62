"""Running real ``idsvc serve`` processes for multi-node tests and the revocation benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], url: str, deadline: float) -> None:
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"idsvc serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"idsvc serve did not answer on {url} in time")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextmanager
def service_nodes(count: int, env: dict[str, str], base_dir: Path, *, start_timeout_s: float = 60.0) -> Iterator[list[str]]:
    """``count`` ``idsvc serve`` processes with ``env`` (IDSVC_*), started side by side (start-up is
    mostly imports); yields their base URLs and always stops them (terminate, kill after 5 s)."""
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for n in range(count):
            port, data_dir = free_port(), base_dir / f"node{n}"
            data_dir.mkdir(parents=True, exist_ok=True)
            node_env = {**os.environ, **env, "IDSVC_DATA_DIR": str(data_dir), "IDSVC_LOG_LEVEL": "warning", "PYTHONPATH": str(REPO)}
            process = subprocess.Popen([sys.executable, "-m", "idsvc", "serve", "--port", str(port)], cwd=REPO, env=node_env)
            started.append((process, f"http://127.0.0.1:{port}"))
        deadline = time.monotonic() + start_timeout_s
        for process, url in started:
            _wait_ready(process, url, deadline)
        yield [url for _, url in started]
    finally:
        for process, _ in started:
            _stop(process)
