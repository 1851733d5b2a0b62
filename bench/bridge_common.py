"""Shared set-up for the bridge benchmarks: a seeded service database, a service process, a config."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pass_endpoint import start_server
from bench.pass_verify import make_context
from door_firmware_bridge.config import BridgeConfig, parse
from door_firmware_bridge.simulators.site import Site, seed


def seeded(workdir: Path) -> tuple[Site, dict[str, str]]:
    """A migrated SQLite database with the simulator site; the env a service process needs for it."""
    ctx = make_context(workdir)
    site = seed(ctx)
    env = {"IDSVC_DATABASE_URL": ctx.settings.effective_database_url, "IDSVC_DATA_DIR": str(workdir), "IDSVC_REDIS_URL": ""}
    return site, env


def service(env: dict[str, str]) -> tuple[Any, str]:
    process, port = start_server("idsvc.app:create_app", env)
    return process, f"http://127.0.0.1:{port}"


def config(site: Site, workdir: Path, service_url: str, doors: list[dict[str, Any]] | None = None, prefix: str = "bench", **extra: Any) -> BridgeConfig:
    flat = {"name": "flat-101", "door_id": site.ids["flat"], "site_id": site.ids["site"]}
    return parse({
        "site": prefix,
        "service": {"url": service_url, "device_key": site.bridge_key, "timeout_s": 2.0},
        "journal": {"path": str(workdir / "journal.db")},
        "offline": {"root_public_key": site.root_spki, "cache_dir": str(workdir / "cache"), "feed": "file", "feed_dir": str(workdir / "feed")},
        "listener": {"port": 0},
        "doors": doors or [flat],
    } | extra)


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   (n={len(ordered)})"
