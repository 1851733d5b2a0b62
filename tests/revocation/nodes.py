"""Running real ``idsvc serve`` processes for multi-node tests and the revocation benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service_node(env: dict[str, str], data_dir: Path, *, start_timeout_s: float = 30.0) -> Iterator[str]:
    """One ``idsvc serve`` on a free port with ``env`` (IDSVC_*); yields its base URL and always
    stops it (terminate, then kill after 5 s)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env, "IDSVC_DATA_DIR": str(data_dir), "IDSVC_LOG_LEVEL": "warning", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "idsvc", "serve", "--port", str(port)], cwd=REPO, env=full_env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"idsvc serve exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"idsvc serve did not answer on {url} within {start_timeout_s} s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def service_nodes(count: int, env: dict[str, str], base_dir: Path) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(service_node(env, base_dir / f"node{n}")) for n in range(count)]
