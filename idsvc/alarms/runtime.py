"""What the alarm core runs beside the HTTP service: the sweeper (held conditions, silent sensors),
the service's own alarms from bus notices (a face template that cannot be opened) and, when
``IDSVC_HJ212_PORT`` is set, the HJ 212 server. Started and stopped by the app's lifespan.

Every node sweeps; the claims in the database (a condition's ``raised``, a sensor's ``online``)
make each alarm come from exactly one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from idsvc.alarms import sensors, service
from idsvc.alarms.hj212.server import Hj212Server
from idsvc.alarms.hj212.stations import Stations
from idsvc.core.bus import Bus, Notice
from idsvc.core.db import Database, utcnow
from idsvc.core.sealing import Sealer
from idsvc.faces.gallery import UNREADABLE_NOTICE

log = logging.getLogger(__name__)


def sweep_once(db: Database, bus: Bus) -> None:
    now = utcnow()
    with db.session() as session:
        service.sweep_conditions(session, bus, now)
    with db.session() as session:
        sensors.sweep_silent(session, bus, now)


def raise_from_notice(db: Database, bus: Bus, notice: Notice) -> None:
    """Lower layers report trouble on the bus (they cannot import the alarm core); this raises it."""
    if notice.get("kind") != UNREADABLE_NOTICE:
        return
    signal = service.Signal(
        source=f"face-template:{notice['person_id']}",
        type="face_template_unreadable",
        site_id=notice["site_id"],
        at=utcnow(),
        data={"person_id": notice["person_id"], "pack": notice.get("pack"), "problem": notice.get("problem")},
    )
    with db.session() as session:
        service.raise_alarm(session, bus, signal, actor="system:faces")


class AlarmRuntime:
    def __init__(self, db: Database, sealer: Sealer, bus: Bus, *, sweep_s: float, hj212_host: str, hj212_port: int) -> None:
        self.db, self.bus, self.sweep_s = db, bus, sweep_s
        self.hj212 = Hj212Server(Stations(db, sealer, bus), hj212_host, hj212_port) if hj212_port else None
        self._sweeper: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] = lambda: None

    async def start(self) -> None:
        self._unsubscribe = self.bus.subscribe(self._on_notice)
        if self.hj212 is not None:
            await self.hj212.start()
        self._sweeper = asyncio.create_task(self._sweep_loop())

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(sweep_once, self.db, self.bus)
            except Exception:  # a database hiccup: try again next round
                log.exception("alarm sweep failed")
            await asyncio.sleep(self.sweep_s)

    def _on_notice(self, notice: Notice) -> None:
        try:
            raise_from_notice(self.db, self.bus, notice)
        except Exception:  # the alarm is lost, the log keeps it; the publisher must not fail for it
            log.exception("could not raise the alarm of notice %s", notice.get("kind"))

    async def close(self) -> None:
        self._unsubscribe()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.hj212 is not None:
            await self.hj212.close()
