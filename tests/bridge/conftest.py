"""Fixtures for the bridge tests: a real service process, a site to drive, brokers and bridge configs.

The service runs as its own uvicorn process on the test database (so "service down" is a real
process gone); Mosquitto is the machine's broker at 127.0.0.1:1883 with a topic prefix per test, or
a private broker started by the test where it must be restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.config import BridgeConfig, parse
from door_firmware_bridge.simulators.site import Site, seed
from idsvc.context import AppContext

BROKER_PORT = 1883
TEST_TIMEOUT_S = 240  # every bridge test talks to sockets, brokers and processes: a hang fails with its stacks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/bridge/" in str(item.fspath) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S, method="thread"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class ServiceProcess:
    """``uvicorn idsvc.app:create_app`` on the test database; stop() and start() for outages."""

    def __init__(self, ctx: AppContext, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = ctx.settings
        self.env = os.environ | {
            "IDSVC_DATABASE_URL": settings.effective_database_url,
            "IDSVC_DATA_DIR": str(settings.data_dir),
            "IDSVC_REDIS_URL": settings.redis_url,
            "IDSVC_REDIS_PREFIX": settings.redis_prefix,
            "IDSVC_MASTER_KEY": settings.master_key,
        }
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "idsvc.app:create_app", "--factory", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
             "--timeout-graceful-shutdown", "1"],  # bridges hold the feed's event stream open
            env=self.env, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 30, "the service to start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def service(ctx: AppContext, tmp_path: Path) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(ctx, tmp_path)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


class Mosquitto:
    """A private broker for tests that restart it (the shared one must stay up for everyone)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_broker() -> Iterator[Mosquitto]:
    broker = Mosquitto()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def site(ctx: AppContext) -> Site:
    """A flat door and a park gate lane, a tenant and an employee with passes, a registered van."""
    return seed(ctx)


def bridge_config(site: Site, tmp_path: Path, *, service_url: str, broker_port: int = BROKER_PORT, prefix: str | None = None,
                  gate_url: str | None = None, feed_dir: Path | None = None, **overrides: Any) -> BridgeConfig:
    """A config for this site: the flat door on MQTT, and the gate on ISAPI when ``gate_url`` is given."""
    name = prefix or f"t{secrets.token_hex(4)}"  # the site's topic segment: tests on the shared broker never collide
    flat: dict[str, Any] = {"name": "flat-101", "door_id": site.ids["flat"], "site_id": site.ids["site"],
                            "pulse_s": 1.5, "ack_timeout_s": 1.5, "command_ttl_s": 3, "relock_grace_s": 1.0, "held_open_s": 2.0}
    flat |= overrides.pop("flat", {})
    door_list: list[dict[str, Any]] = [flat]
    if gate_url is not None:
        gate = {"name": "gate-in", "door_id": site.ids["gate"], "site_id": site.ids["site"],
                "adapter": "isapi", "isapi": {"base_url": gate_url, "username": "admin", "password": "gate-pass-1", "mode": "bridge_opens"},
                "ack_timeout_s": 2, "command_ttl_s": 4}
        gate_overrides = overrides.pop("gate", {})
        gate["isapi"] |= gate_overrides.pop("isapi", {})  # type: ignore[operator]
        gate |= gate_overrides
        door_list.append(gate)
    data: dict[str, Any] = {
        "site": name,
        "service": {"url": service_url, "device_key": site.bridge_key, "timeout_s": 3.0},  # a loaded CI box: first calls are slow
        "broker": {"host": "127.0.0.1", "port": broker_port, "client_id": f"bridge-{name}", "keepalive_s": 5},
        "journal": {"path": str(tmp_path / "journal.db"), "upload_interval_s": 0.2},
        "offline": {"root_public_key": site.root_spki, "cache_dir": str(tmp_path / "cache"), "refresh_s": 1.0,
                    **({"feed": "file", "feed_dir": str(feed_dir)} if feed_dir else {})} | overrides.pop("offline", {}),
        "listener": {"host": "127.0.0.1", "port": 0},
        "doors": door_list,
    } | overrides
    return parse(data)


@asynccontextmanager
async def running(bridge: Bridge) -> AsyncIterator[Bridge]:
    """Run the bridge in this loop until the block ends; it is stopped (and its tasks ended) after."""
    task = asyncio.create_task(bridge.run())
    try:
        if bridge.mqtt is not None:
            await until(lambda: bridge.mqtt is not None and bridge.mqtt.health()["connected"], 10, "the bridge to reach the broker")
        if bridge.isapi is not None:
            await until(lambda: bridge.isapi is not None and bridge.isapi._server is not None and bridge.isapi._server.started, 10, "the ISAPI listener")
        yield bridge
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
