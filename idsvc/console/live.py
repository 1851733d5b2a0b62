"""The screen's live stream: door events from the audit trail, alarms from the change-notice bus.

Every door decision and device event is written to the audit trail (batched within a quarter of a
second, from any node), so one task per process reads the new events every ``interval`` seconds and
hands each to the open screens of its site; nothing is read while no screen is open. Alarm notices
already travel on the bus (alarms/notices.py) and reach every node at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select

from idsvc.audit.models import AuditEvent
from idsvc.console.screen import door_event
from idsvc.core.db import Database

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Screen:
    """One open screen: the site it shows and the queue of events for it."""

    site_id: int
    queue: asyncio.Queue[AuditEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=2000))


class TrailTail:
    def __init__(self, db: Database, interval: float = 0.25) -> None:
        self.db = db
        self.interval = interval
        self._screens: set[Screen] = set()
        self._task: asyncio.Task[None] | None = None
        self._last_seq: int | None = None

    def open(self, site_id: int) -> Screen:
        screen = Screen(site_id)
        self._screens.add(screen)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return screen

    def close(self, screen: Screen) -> None:
        self._screens.discard(screen)

    def _read(self) -> list[AuditEvent]:
        with self.db.session() as session:
            if self._last_seq is None:
                self._last_seq = session.scalar(select(func.max(AuditEvent.seq))) or 0
                return []
            sites = {s.site_id for s in self._screens}
            stmt = select(AuditEvent).where(AuditEvent.seq > self._last_seq, door_event(), AuditEvent.site_id.in_(sites))
            events = list(session.scalars(stmt.order_by(AuditEvent.seq).limit(5000)))
            if events:
                self._last_seq = events[-1].seq
            session.expunge_all()
            return events

    def since(self, site_id: int, after_seq: int, limit: int = 500) -> list[AuditEvent]:
        """A screen's catch-up: the site's door events after the one it last showed (at most ``limit``, the newest)."""
        with self.db.session() as session:
            stmt = select(AuditEvent).where(AuditEvent.seq > after_seq, door_event(), AuditEvent.site_id == site_id)
            events = list(session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(limit)))
            session.expunge_all()
        return events[::-1]

    async def _run(self) -> None:
        while self._screens:
            try:
                for event in await run_in_threadpool(self._read):
                    for screen in list(self._screens):
                        if screen.site_id == event.site_id and not screen.queue.full():
                            screen.queue.put_nowait(event)
            except Exception:  # a database hiccup must not end the stream: the next round reads again
                log.exception("console: reading the audit trail for the live stream failed")
            await asyncio.sleep(self.interval)
        self._last_seq = None  # the next screen starts from what is new then

