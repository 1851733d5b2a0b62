"""What the alarm core runs beside the HTTP service: the sweeper (held conditions, silent sensors)
and, when ``IDSVC_HJ212_PORT`` is set, the HJ 212 server. Started and stopped by the app's lifespan.

Every node sweeps; the claims in the database (a condition's ``raised``, a sensor's ``online``)
make each alarm come from exactly one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from idsvc.alarms import sensors, service
from idsvc.alarms.hj212.server import Hj212Server
from idsvc.alarms.hj212.stations import Stations
from idsvc.core.db import Database, utcnow
from idsvc.core.sealing import Sealer
from idsvc.core.bus import Bus

log = logging.getLogger(__name__)


def sweep_once(db: Database, bus: Bus) -> None:
    now = utcnow()
    with db.session() as session:
        service.sweep_conditions(session, bus, now)
    with db.session() as session:
        sensors.sweep_silent(session, bus, now)


class AlarmRuntime:
    def __init__(self, db: Database, sealer: Sealer, bus: Bus, *, sweep_s: float, hj212_host: str, hj212_port: int) -> None:
        self.db, self.bus, self.sweep_s = db, bus, sweep_s
        self.hj212 = Hj212Server(Stations(db, sealer, bus), hj212_host, hj212_port) if hj212_port else None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
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

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.hj212 is not None:
            await self.hj212.close()
