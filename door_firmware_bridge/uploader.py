"""Uploads the journal to the service, at least once: an event is marked only after the service answered.

The service stores each event id once (POST /v1/device/events), so a batch re-sent after a lost
answer, a crash or an hour offline is harmless. Rejected events stay in the journal, marked, with
the service's reason, instead of being re-sent forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from door_firmware_bridge.config import JournalConfig, ServiceConfig
from door_firmware_bridge.journal import REJECTED, UPLOADED, Entry, Journal
from door_firmware_bridge.model import utcnow

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0
PRUNE_EVERY_S = 3600.0
BACKOFF_FACTOR = 32  # after failures, wait up to 32x the interval (never more than MAX_BACKOFF_S)


class Uploader:
    """``path`` and ``to_body`` let another journal (the sensor ingest's readings) use the same loop."""

    def __init__(self, journal: Journal, service: ServiceConfig, cfg: JournalConfig, *, path: str = "/v1/device/events",
                 to_body: Callable[[list[Entry]], dict[str, Any]] = lambda entries: {"events": [e.to_upload() for e in entries]}) -> None:
        self.journal = journal
        self.cfg = cfg
        self.path, self.to_body = path, to_body
        self._client = httpx.AsyncClient(base_url=service.url, headers={"Authorization": f"Bearer {service.key()}"}, timeout=max(5.0, service.timeout_s))
        self.last_error: str | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def upload_once(self) -> int:
        """Send one batch of pending events; returns how many the service settled (raises on failure)."""
        pending = await asyncio.to_thread(self.journal.pending, self.cfg.upload_batch)
        if not pending:
            return 0
        answer = await self._client.post(self.path, json=self.to_body(pending))
        answer.raise_for_status()
        body = answer.json()
        done = list(body.get("stored", [])) + list(body.get("duplicates", []))
        await asyncio.to_thread(self.journal.mark, done, UPLOADED)
        for event_id, reason in (body.get("rejected") or {}).items():
            await asyncio.to_thread(self.journal.mark, [event_id], REJECTED, reason)
            log.warning("the service rejected journal event %s: %s", event_id, reason)
        return len(pending)

    async def run(self) -> None:
        backoff = self.cfg.upload_interval_s
        pruned_at = float("-inf")
        while True:
            if time.monotonic() - pruned_at > PRUNE_EVERY_S:
                pruned_at = time.monotonic()
                await asyncio.to_thread(self.journal.prune_uploaded, utcnow() - timedelta(days=self.cfg.keep_uploaded_days))
            try:
                settled = await self.upload_once()
                self.last_error, backoff = None, self.cfg.upload_interval_s
            except (httpx.HTTPError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                settled, backoff = 0, min(backoff * 2, self.cfg.upload_interval_s * BACKOFF_FACTOR, MAX_BACKOFF_S)
            if settled < self.cfg.upload_batch:
                await asyncio.sleep(backoff)
