"""Park-gate terminals and cameras through Hikvision ISAPI: events in (listener or alert stream),
verdicts and door commands out, missed events recovered by serial, the person list kept in step.

In: terminals post to the bridge's listener at ``/isapi/<door name>`` (JSON, XML or multipart), or,
with ``events = "alert_stream"``, the bridge reads each terminal's event stream. Events are read by
events.interpret. Out: a remote verification's verdict (``PUT /ISAPI/AccessControl/remoteCheck``:
the terminal shows it and opens the door itself), or, for a reader in ``bridge_opens`` mode,
``PUT /ISAPI/AccessControl/RemoteControl/door/<n>``; either answer with statusCode 1 is the
terminal's confirmation, no answer within the command's life is left to the supervisor's timeout.
The terminal's door-open time is the relock. A terminal is probed every 2 s; when it comes back
(or at start, or after a gap in the serial numbers, or when its alert stream reconnects) the
events it kept are fetched with ``AcsEvent`` and journalled, never acted on: they are late by
definition. With ``sync_people`` the terminal's person list follows the feed (people.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from door_firmware_bridge.adapters.base import Sink
from door_firmware_bridge.adapters.isapi import alert_stream, people
from door_firmware_bridge.adapters.isapi.events import interpret
from door_firmware_bridge.adapters.isapi.messages import events_from_body
from door_firmware_bridge.adapters.isapi.terminal import Terminal
from door_firmware_bridge.config import DoorConfig, IsapiEvents, ListenerConfig
from door_firmware_bridge.journal import Journal
from door_firmware_bridge.model import Availability, Command, CommandResult, Recorded, RemoteCheck, utcnow
from door_firmware_bridge.supervisor import DeviceUnavailable
from idsvc.sync.verify import FeedState

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 2 * 1024 * 1024
POLL_S = 2.0
SYNC_EVERY_S = 300.0  # the person list is reconciled on every feed change and at least this often


class QuietServer(uvicorn.Server):
    """uvicorn inside the bridge's loop: the bridge owns the process's signals, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class IsapiAdapter:
    def __init__(self, listener: ListenerConfig, doors: list[DoorConfig], journal: Journal, feed_state: Callable[[], FeedState | None] = lambda: None) -> None:
        self.listener = listener
        self.doors = doors
        self.terminals = {d.name: Terminal(d, d.isapi, journal) for d in doors if d.isapi is not None}
        self._feed_state = feed_state
        self._sink: Sink | None = None
        self._server: QuietServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._feed_changed = asyncio.Event()
        self.people_synced: dict[str, dict[str, int]] = {}

    @property
    def port(self) -> int:
        """The bound port (the config may say 0 = any free port, as tests do)."""
        if self._server is None or not self._server.servers:
            return self.listener.port
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    def health(self) -> dict[str, Any]:
        return {
            "listener": f"{self.listener.host}:{self.port}",
            "terminals": {n: {"reachable": t.reachable, "last_serial": t.last_serial, "people": self.people_synced.get(n)} for n, t in self.terminals.items()},
        }

    def relocks_itself(self, door: DoorConfig) -> bool:
        return True  # the terminal's own door-open time ends the pulse

    def feed_changed(self) -> None:
        """The bridge applied a new feed: the person lists may need to follow."""
        self._feed_changed.set()

    # --- running ------------------------------------------------------------------------------

    async def run(self, sink: Sink) -> None:
        self._sink = sink
        app = Starlette(routes=[Route("/isapi/{door}", self._receive, methods=["POST"])])
        self._server = QuietServer(uvicorn.Config(app, host=self.listener.host, port=self.listener.port, log_level="warning", lifespan="off", access_log=False))
        serving = asyncio.create_task(self._server.serve())
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch(sink))
                for terminal in self.terminals.values():
                    if terminal.cfg.events is IsapiEvents.alert_stream:
                        group.create_task(self._stream(terminal, sink))
                if any(t.cfg.sync_people for t in self.terminals.values()):
                    group.create_task(self._sync_people(sink))
        finally:
            self._server.should_exit = True
            await serving
            for task in list(self._tasks):
                task.cancel()
            for terminal in self.terminals.values():
                await terminal.client.aclose()

    async def _watch(self, sink: Sink) -> None:
        """Probe each terminal; when one comes back (or at start), fetch what it saw meanwhile."""
        while True:
            for terminal in self.terminals.values():
                up = await terminal.probe()
                if up and terminal.reachable is not True:
                    with contextlib.suppress(httpx.HTTPError, ValueError):
                        await terminal.recover(sink)
                    self._feed_changed.set()  # a terminal back from a power cut may have lost its list
                if up != terminal.reachable:
                    terminal.reachable = up
                    await sink(Availability(terminal.door.name, up))  # the supervisor journals the change
            await asyncio.sleep(POLL_S)

    async def _stream(self, terminal: Terminal, sink: Sink) -> None:
        """Hold the terminal's alert stream open; reconnect (after recovering missed events) when it ends or falls silent."""
        backoff = 0.5
        while True:
            try:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    await terminal.recover(sink)
                async for event in alert_stream.events(terminal):
                    backoff = 0.5
                    await self._deliver(terminal, event, sink)
            except (httpx.HTTPError, alert_stream.StreamSilent) as exc:
                log.info("alert stream of %s ended: %s", terminal.door.name, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _sync_people(self, sink: Sink) -> None:
        while True:
            self._feed_changed.clear()
            state = self._feed_state()
            for terminal in self.terminals.values():
                if not terminal.cfg.sync_people or state is None or terminal.reachable is False:
                    continue
                try:
                    report = await people.reconcile(terminal, state, utcnow())
                except (httpx.HTTPError, ValueError) as exc:
                    await sink(Recorded(terminal.door.name, "terminal_people_sync_failed", {"error": f"{type(exc).__name__}: {exc}", "alarm": True}))
                    continue
                self.people_synced[terminal.door.name] = report.to_dict() | {"feed": state.version}
                if report.added or report.modified or report.deleted or report.faces_deleted:
                    await sink(Recorded(terminal.door.name, "terminal_people_synced", report.to_dict() | {"feed_version": state.version}))
                if report.failed:
                    await sink(Recorded(terminal.door.name, "terminal_people_sync_failed", report.to_dict() | {"feed_version": state.version, "alarm": True}))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SYNC_EVERY_S):
                    await self._feed_changed.wait()

    # --- events in ----------------------------------------------------------------------------

    async def _receive(self, request: Request) -> JSONResponse:
        terminal = self.terminals.get(request.path_params["door"])
        if terminal is None or self._sink is None:
            return JSONResponse({"statusCode": 4, "statusString": "Invalid Operation"}, status_code=404)
        source = request.client.host if request.client else ""
        if terminal.cfg.allowed_sources and source not in {str(a) for a in terminal.cfg.allowed_sources}:
            await self._sink(Recorded(terminal.door.name, "device_message_refused", {"source": source, "alarm": True}))
            return JSONResponse({"statusCode": 4, "statusString": "Invalid Operation"}, status_code=403)
        if int(request.headers.get("content-length") or 0) > MAX_EVENT_BYTES:
            return JSONResponse({"statusCode": 4, "statusString": "Too Large"}, status_code=413)
        body = await request.body()
        events = events_from_body(body, request.headers.get("content-type", ""))
        if not events:
            await self._sink(Recorded(terminal.door.name, "device_message_invalid", {"bytes": len(body)}))
            return JSONResponse({"statusCode": 6, "statusString": "Invalid Content"}, status_code=400)
        for event in events:
            await self._deliver(terminal, event, self._sink)
        return JSONResponse({"statusCode": 1, "statusString": "OK"})

    async def _deliver(self, terminal: Terminal, event: dict[str, Any], sink: Sink) -> None:
        for item in interpret(terminal, event):
            if isinstance(item, tuple):  # a gap in serial numbers: fetch what was missed, in the background
                self._spawn(terminal.recover(sink, *item))
            else:
                await sink(item)

    def _spawn(self, work: Any) -> None:
        async def guarded() -> None:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                await work

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- commands out -------------------------------------------------------------------------

    async def send(self, door: DoorConfig, cmd: Command) -> None:
        terminal = self.terminals[door.name]
        if terminal.reachable is False:
            raise DeviceUnavailable("terminal_unreachable")
        self._spawn(self._command(terminal, cmd))

    async def _command(self, terminal: Terminal, cmd: Command) -> None:
        """The terminal's answer is its own result; no answer leaves the supervisor to time out."""
        assert self._sink is not None
        timeout = max(0.1, (cmd.expires_at - utcnow()).total_seconds())
        try:
            if cmd.remote_check is not None:
                ok = await terminal.verdict(cmd.remote_check.serial, True, "ok", timeout)
            else:
                ok = await terminal.open_door(timeout)
        except httpx.TimeoutException:
            return
        except httpx.HTTPError:
            ok = False
        await self._sink(CommandResult(terminal.door.name, cmd.cmd_id, "executed" if ok else "device_error"))

    async def refuse(self, door: DoorConfig, check: RemoteCheck, info: str) -> None:
        """The failed verdict of a remote verification: the terminal shows it and keeps the door shut."""
        terminal = self.terminals[door.name]
        await terminal.verdict(check.serial, False, info, door.command_ttl_s)
