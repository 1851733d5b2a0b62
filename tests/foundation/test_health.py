"""Liveness and readiness: /healthz answers while the process runs; /readyz gives each dependency's
state and 503 when a required one is down; scripts/run.sh serves without the face pack (no npm)."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from idsvc.app import create_app
from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.db.migrate import upgrade
from tests.conftest import REPO_ROOT
from tests.prerequisites import missing

READY_SHAPE = {"status", "version", "checked_at", "checks"}
CHECK_SHAPE = {"state", "required", "latency_ms", "detail"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_readyz_names_every_dependency_with_its_state(client: TestClient) -> None:
    live = client.get("/healthz")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    ready = client.get("/readyz")
    body = ready.json()
    assert set(body) == READY_SHAPE and body["checked_at"].endswith("Z")
    assert set(body["checks"]) >= {"database", "kv", "face_engine"}
    assert all(set(check) == CHECK_SHAPE for check in body["checks"].values())
    assert body["checks"]["database"]["state"] == "up" and body["checks"]["database"]["required"] is True
    assert body["checks"]["face_engine"]["required"] is False  # QR doors work without it
    assert ready.status_code == 200 and body["status"] == "ready"


@contextmanager
def _own_app(tmp_path: Path, **settings: object) -> Iterator[TestClient]:
    """An app on a context of its own (a fresh SQLite file), for dependencies this test breaks."""
    config = Settings(data_dir=tmp_path / "data", master_key="", _env_file=None, **settings)  # type: ignore[call-arg]
    config.data_dir.mkdir()
    upgrade(config.effective_database_url)
    context = AppContext.from_settings(config)
    try:
        with TestClient(create_app(context)) as client:
            yield client
    finally:
        context.close()


def test_readyz_reports_a_missing_face_pack_without_failing(tmp_path: Path) -> None:
    with _own_app(tmp_path, models_dir=tmp_path / "no-packs") as client:
        ready = client.get("/readyz")
        face = ready.json()["checks"]["face_engine"]
        assert ready.status_code == 200 and face["state"] == "down" and "idsvc models install" in face["detail"]
        assert str(tmp_path) not in face["detail"]  # the answer is public: no paths


@pytest.fixture
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, so that stopping it touches no one else."""
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    _wait(listening, 10, "redis-server to listen")
    try:
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        process.kill()
        process.wait(10)


def test_readyz_is_503_when_the_key_value_store_goes_away(private_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    url, redis_process = private_redis
    with _own_app(tmp_path, redis_url=url, redis_prefix="readyz:") as client:
        kv = client.get("/readyz").json()["checks"]["kv"]
        assert kv["state"] == "up" and kv["detail"] == "redis"
        redis_process.kill()
        redis_process.wait(10)
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json()["status"] == "not_ready"
        kv = down.json()["checks"]["kv"]
        assert kv["state"] == "down" and kv["required"] is True and url not in kv["detail"]
        assert client.get("/healthz").status_code == 200  # alive, only not ready


def test_run_script_serves_without_npm_and_names_the_command_that_installs_the_pack(tmp_path: Path) -> None:
    """scripts/run.sh on a machine without Node.js/npm: a warning with the fix, then the service."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("run.sh", "setup.sh"):
        shutil.copy(REPO_ROOT / "scripts" / name, repo / "scripts" / name)
    shutil.copy(REPO_ROOT / "pyproject.toml", repo / "pyproject.toml")
    # An installed environment as setup.sh leaves it (its stamp says nothing needs installing),
    # whose idsvc is this interpreter's.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    launcher = venv / "bin" / "idsvc"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m idsvc "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    (venv / ".idsvc-installed").write_text(hashlib.sha256((repo / "pyproject.toml").read_bytes()).hexdigest()[:16] + " \n")
    # A PATH with the shell tools the scripts use, and no node or npm.
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "sh", "sha256sum", "cut", "cat", "dirname", "python3"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    port = _free_port()
    env = {
        "PATH": f"{venv / 'bin'}:{tools}",
        "HOME": str(tmp_path),
        "IDSVC_VENV": str(venv),
        "IDSVC_MODELS_DIR": str(tmp_path / "models"),
        "IDSVC_PORT": str(port),
        "PYTHON": sys.executable,
    }
    process = subprocess.Popen(["bash", str(repo / "scripts" / "run.sh")], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:

        def serving() -> bool:
            if process.poll() is not None:
                pytest.fail(f"run.sh stopped (exit {process.returncode}):\n{process.stderr.read() if process.stderr else ''}")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait(serving, 60, "run.sh to serve")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["checks"]["face_engine"]["state"] == "down"
        demo = json.loads((repo / "var" / "demo-keys.json").read_text())
        lock = {"Authorization": f"Bearer {demo['keys']['lock']}"}
        face = httpx.post(f"http://127.0.0.1:{port}/v1/device/face-verify", headers=lock, data={"door_id": demo["doors"]["flat"], "person_id": demo["people"]["tenant"]},
                          files={"image": ("f.jpg", b"\xff\xd8\xff", "image/jpeg")}, timeout=10)
        assert face.status_code == 503 and face.json()["error"]["code"] == "face_engine_unavailable", face.text
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    warning = process.stderr.read() if process.stderr else ""
    assert "npm" in warning and "idsvc models install" in warning and "face_engine_unavailable" in warning, warning
    assert "Traceback" not in warning

