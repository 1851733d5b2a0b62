"""The asyncio TCP server stations connect to (``IDSVC_HJ212_PORT``; started with the service).

Each connection has its own deframer (frames split across reads, several frames in one read,
garbage between them); each frame is parsed, handled in a worker thread (database work), and
answered on the same connection in order. Nothing a station sends can end the server: a bad frame
is logged and counted, a failing connection is closed, the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from idsvc.alarms.hj212.protocol import Deframer, FrameError, parse
from idsvc.alarms.hj212.stations import Stations

log = logging.getLogger(__name__)


class Hj212Server:
    def __init__(self, stations: Stations, host: str, port: int, idle_timeout_s: float = 900.0) -> None:
        self.stations = stations
        self.host, self.requested_port = host, port
        self.idle_timeout_s = idle_timeout_s
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        # reuse_port: several service workers share the port and the kernel spreads the stations.
        self._server = await asyncio.start_server(self._client, self.host, self.requested_port, reuse_port=True)
        self._tasks.add(asyncio.create_task(self._flush_loop()))
        log.info("HJ 212 server listening on %s:%s", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.stations.assembler.timeout_s))
            try:
                await asyncio.to_thread(self.stations.flush_expired)
            except Exception:
                log.exception("could not store incomplete split messages")

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        deframer = Deframer()
        try:
            while True:
                async with asyncio.timeout(self.idle_timeout_s):
                    data = await reader.read(65536)
                if not data:
                    break
                frames, errors = deframer.feed(data)
                for error in errors:
                    self.stations.count(error.code)
                    log.warning("hj212 %s: %s", peer, error)
                for raw in frames:
                    try:
                        frame = parse(raw)
                    except FrameError as exc:
                        self.stations.count(exc.code)
                        log.warning("hj212 %s: dropped a frame: %s", peer, exc)
                        continue
                    outcome = await asyncio.to_thread(self.stations.handle, frame)
                    if outcome.answer is not None:
                        writer.write(outcome.answer)
                        await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must cost one connection, never the server
            log.exception("hj212 connection from %s failed", peer)
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
