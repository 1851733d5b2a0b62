"""Readiness: one check per dependency, each with a state, and one answer shape for ``GET /readyz``.

A check is a name, whether the service is useless without it (``required``), and a probe: a
function that returns a short detail when the dependency works and raises when it does not. The
answer (docs/operations.md, "Health and readiness") is::

    {"status": "ready" | "not_ready", "version": "0.1.0", "checked_at": "2026-12-01T10:00:00Z",
     "checks": {"database": {"state": "up" | "down", "required": true, "latency_ms": 0.8, "detail": "sqlite"}, ...}}

with HTTP 503 when a required check is down. New dependencies are new :class:`Check` entries.
Probes run at once, each in a thread, and one that has not answered within :data:`PROBE_TIMEOUT_S`
is down ("no answer within 2 s"): a hung database makes the node not ready in two seconds, so a load
balancer drains it, instead of hanging the readiness request too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from idsvc.core.db import utcnow
from idsvc.core.times import rfc3339

log = logging.getLogger(__name__)

UP, DOWN = "up", "down"
PROBE_TIMEOUT_S = 2.0
# Shared by every readiness request; a probe stuck on a dead dependency holds one thread until the
# dependency's own timeout (IDSVC_DB_TIMEOUT_S, IDSVC_REDIS_TIMEOUT_S) frees it.
_probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="idsvc-readyz")


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


def _within_limit(check: Check, pending: Any) -> dict[str, Any]:
    try:
        return pending.result(timeout=PROBE_TIMEOUT_S)  # type: ignore[no-any-return]
    except FutureTimeout:
        log.warning("readiness: %s did not answer within %.0f s", check.name, PROBE_TIMEOUT_S)
        return {"state": DOWN, "required": check.required, "latency_ms": PROBE_TIMEOUT_S * 1000, "detail": f"no answer within {PROBE_TIMEOUT_S:.0f} s"}


def run_checks(checks: list[Check], version: str) -> tuple[bool, dict[str, Any]]:
    """(ready, answer): ready when every required check is up."""
    pending = [(check, _probes.submit(_run, check)) for check in checks]
    results = {check.name: _within_limit(check, future) for check, future in pending}
    ready = all(r["state"] == UP for r in results.values() if r["required"])
    return ready, {"status": "ready" if ready else "not_ready", "version": version, "checked_at": rfc3339(utcnow()), "checks": results}
