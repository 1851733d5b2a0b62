"""Prometheus metrics (prometheus-client): what each layer counts, and the ``/metrics`` text.

Every name is listed in docs/operations.md ("Metrics"); a test keeps the two in step.

Several worker processes (``idsvc serve --workers N``) each count their own requests. With the
environment variable ``PROMETHEUS_MULTIPROC_DIR`` set to an empty directory that the workers share,
prometheus-client keeps the counts in files there and :func:`exposition` adds them up, so any
worker's ``/metrics`` answers for all of them (``idsvc serve`` empties the directory at start).
Without it, each scrape sees the one worker that answered it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.registry import REGISTRY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

DECISIONS = Counter("idsvc_decisions_total", "Door decisions, by method (qr, face, plate) and result (allow, deny).", ["method", "result"])
DECISION_REASONS = Counter(
    "idsvc_decision_reasons_total", "Reasons given for denied door decisions (a decision may give several).", ["method", "reason"]
)
REQUEST_SECONDS = Histogram(
    "idsvc_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status class (2xx, 4xx, 5xx).",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
NOTICE_LAG_SECONDS = Histogram(
    "idsvc_feed_notice_lag_seconds",
    "From a commit to its change notice reaching this process (the feed's push to bridges starts here).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
FEED_VERSION = Gauge("idsvc_feed_version", "The newest sync feed version this process has seen.", multiprocess_mode="max")
FEED_STREAMS = Gauge("idsvc_feed_streams", "Bridges' event streams open on this process.", multiprocess_mode="livesum")
FACE_ENGINE_UP = Gauge(
    "idsvc_face_engine_up", "1 when the face engine has its model pack loaded, 0 when face endpoints answer 503.", multiprocess_mode="mostrecent"
)
# Read from the database at scrape time (the same count for every worker): the 2025 face-recognition
# measures require a filing at 100,000 people, so operators alert well before (docs/privacy.md).
FACE_ENROLLED_PEOPLE = Gauge(
    "idsvc_face_enrolled_people", "People with a face template, by site.", ["site"], multiprocess_mode="mostrecent"
)


def set_enrolled_people(by_site: dict[int, int]) -> None:
    FACE_ENROLLED_PEOPLE.clear()  # a site whose last template went must not keep its old count
    for site_id, count in by_site.items():
        FACE_ENROLLED_PEOPLE.labels(str(site_id)).set(count)


def count_decision(method: str, allow: bool, reasons: Iterable[str]) -> None:
    DECISIONS.labels(method, "allow" if allow else "deny").inc()
    for reason in reasons:
        DECISION_REASONS.labels(method, reason).inc()


_newest_version = 0


def observe_notice(notice: dict[str, Any]) -> None:
    """A change notice reached this process (core/bus.py): its version, and how long it took since
    the commit (wall clocks of the nodes must agree: run NTP)."""
    global _newest_version
    if notice.get("kind") != "change":
        return
    version = notice.get("version")
    if isinstance(version, int) and version > _newest_version:
        _newest_version = version
        FEED_VERSION.set(version)
    if isinstance(notice.get("at"), (int, float)):
        NOTICE_LAG_SECONDS.observe(max(0.0, time.time() - notice["at"]))


def exposition() -> bytes:
    """The text a Prometheus server scrapes: this process's metrics, or every worker's."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class RequestTimer:
    """ASGI middleware: every HTTP request's duration, labelled by its route template (not its path:
    ``/v1/passes/{pass_id}``, so ids do not make a label each)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(route, scope["method"], f"{status // 100}xx").observe(time.perf_counter() - started)
