"""Readiness: one check per dependency, each with a state, and one answer shape for ``GET /readyz``.

A check is a name, whether the service is useless without it (``required``), and a probe: a
function that returns a short detail when the dependency works and raises when it does not. The
answer (docs/operations.md, "Health and readiness") is::

    {"status": "ready" | "not_ready", "version": "0.1.0", "checked_at": "2026-12-01T10:00:00Z",
     "checks": {"database": {"state": "up" | "down", "required": true, "latency_ms": 0.8, "detail": "sqlite"}, ...}}

with HTTP 503 when a required check is down. New dependencies are new :class:`Check` entries, and a
time limit per probe belongs in :func:`run_checks`: neither changes the shape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idsvc.core.db import utcnow
from idsvc.core.times import rfc3339

log = logging.getLogger(__name__)

UP, DOWN = "up", "down"


@dataclass(frozen=True)
class Check:
    name: str
    probe: Callable[[], str]  # a short detail when it works (no secrets: the answer is public); raises when not
    required: bool = True


class ProbeFailed(Exception):
    """A probe's own explanation, safe to show on the public readiness answer."""

    def __init__(self, public_detail: str) -> None:
        super().__init__(public_detail)
        self.public_detail = public_detail


def _run(check: Check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        state, detail = UP, check.probe()
    except ProbeFailed as exc:  # an expected state the probe explains itself
        log.info("readiness: %s is down: %s", check.name, exc.public_detail)
        state, detail = DOWN, exc.public_detail
    except Exception as exc:  # any failure of a dependency is its state, not the endpoint's
        log.warning("readiness: %s is down", check.name, exc_info=True)
        state, detail = DOWN, f"{type(exc).__name__}; see the service log"
    return {"state": state, "required": check.required, "latency_ms": round((time.perf_counter() - started) * 1000, 2), "detail": detail}


def run_checks(checks: list[Check], version: str) -> tuple[bool, dict[str, Any]]:
    """(ready, answer): ready when every required check is up."""
    results = {check.name: _run(check) for check in checks}
    ready = all(r["state"] == UP for r in results.values() if r["required"])
    return ready, {"status": "ready" if ready else "not_ready", "version": version, "checked_at": rfc3339(utcnow()), "checks": results}
