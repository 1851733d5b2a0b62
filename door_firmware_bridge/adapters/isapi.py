"""Park-gate terminals and cameras in the Hikvision ISAPI style.

In: the terminals post events to the bridge (HTTP "listening" mode) at ``/isapi/<door name>``:
AccessControllerEvent JSON (QRCodeInfo, currTemperature, isAbnomalTemperature, serialNo, pictureURL),
ANPR events (licensePlate, confidenceLevel), as a JSON body or the JSON part of a multipart post.
Out: ``PUT /ISAPI/AccessControl/RemoteControl/door/<n>`` with ``<cmd>open</cmd>`` and digest auth;
the door-open time configured on the terminal is the device-side relock.
Recovery: each terminal numbers its events (serialNo). A gap in the numbers, a restart of the bridge,
or the terminal coming back after being unreachable makes the adapter fetch the missing events with
``POST /ISAPI/AccessControl/AcsEvent`` from the last serialNo it saw. Recovered events are journalled,
never acted on: they are late by definition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from door_firmware_bridge.adapters.base import Sink
from door_firmware_bridge.config import DoorConfig, IsapiTerminal, ListenerConfig
from door_firmware_bridge.journal import Journal
from door_firmware_bridge.model import Availability, Command, CommandResult, DeviceEvent, Presented, Reading, Recorded, utcnow
from door_firmware_bridge.supervisor import DeviceUnavailable

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 2 * 1024 * 1024
POLL_S = 2.0
RECOVERY_PAGE = 30
OPEN_DOOR_XML = '<?xml version="1.0" encoding="UTF-8"?><RemoteControlDoor><cmd>open</cmd></RemoteControlDoor>'


def _celsius(value: float, unit: str | None) -> float:
    unit = (unit or "celsius").lower()
    if unit == "fahrenheit":
        return (value - 32) * 5 / 9
    if unit == "kelvin":
        return value - 273.15
    return value


def _when(text: Any) -> datetime:
    try:
        at = datetime.fromisoformat(str(text))
    except ValueError:
        return utcnow()
    return at if at.tzinfo else utcnow()  # a terminal clock without a zone is not trusted


class _QuietServer(uvicorn.Server):
    """uvicorn inside the bridge's loop: the bridge owns the process's signals, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Terminal:
    """One terminal: its HTTP client, its serialNo cursor and its reachability."""

    def __init__(self, door: DoorConfig, cfg: IsapiTerminal, journal: Journal) -> None:
        self.door = door
        self.cfg = cfg
        self.journal = journal
        self.client = httpx.AsyncClient(base_url=cfg.base_url, auth=httpx.DigestAuth(cfg.username, cfg.password), timeout=cfg.timeout_s)
        cursor = journal.get_cursor(self._cursor_name)
        self.last_serial: int | None = int(cursor) if cursor else None
        self.reachable: bool | None = None
        self.last_reading: Reading | None = None
        self._recovering = asyncio.Lock()

    @property
    def _cursor_name(self) -> str:
        return f"isapi:{self.door.name}:serial"

    @property
    def source(self) -> str:
        return f"isapi:{self.door.name}"

    def saw(self, serial: int) -> None:
        if self.last_serial is None or serial > self.last_serial:
            self.last_serial = serial
            self.journal.set_cursor(self._cursor_name, str(serial))

    async def recover(self, sink: Sink, begin: int | None = None, until: int | None = None) -> int:
        """Fetch events from ``begin`` (default: after the cursor) up to ``until`` (exclusive); journal them."""
        async with self._recovering:
            if begin is None and self.last_serial is None:
                return 0  # a terminal never seen before: nothing of ours was missed
            begin = begin if begin is not None else (self.last_serial or 0) + 1
            found, position, search_id = 0, 0, secrets.token_hex(8)
            while True:
                cond: dict[str, Any] = {"searchID": search_id, "searchResultPosition": position, "maxResults": RECOVERY_PAGE, "major": 0, "minor": 0, "beginSerialNo": begin}
                if until is not None:
                    cond["endSerialNo"] = until - 1
                answer = await self.client.post("/ISAPI/AccessControl/AcsEvent", params={"format": "json"}, json={"AcsEventCond": cond})
                answer.raise_for_status()
                body = answer.json().get("AcsEvent", {})
                infos = body.get("InfoList") or []
                for info in sorted(infos, key=lambda i: int(i.get("serialNo", 0))):
                    serial = int(info.get("serialNo", 0))
                    if serial < begin or (until is not None and serial >= until):
                        continue
                    await sink(Recorded(self.door.name, "device_event_recovered", {"serialNo": serial, "event": info}, at=_when(info.get("time"))))
                    self.saw(serial)
                    found += 1
                position += len(infos)
                if body.get("responseStatusStrg") != "MORE" or not infos:
                    return found

    async def probe(self) -> bool:
        try:
            answer = await self.client.get("/ISAPI/System/deviceInfo")
            return answer.status_code == 200
        except httpx.HTTPError:
            return False


class IsapiAdapter:
    def __init__(self, listener: ListenerConfig, doors: list[DoorConfig], journal: Journal) -> None:
        self.listener = listener
        self.doors = doors
        self.terminals = {d.name: Terminal(d, d.isapi, journal) for d in doors if d.isapi is not None}
        self._sink: Sink | None = None
        self._server: _QuietServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the config may say 0 = any free port, as tests do)."""
        if self._server is None or not self._server.servers:
            return self.listener.port
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    def health(self) -> dict[str, Any]:
        return {
            "listener": f"{self.listener.host}:{self.port}",
            "terminals": {n: {"reachable": t.reachable, "last_serial": t.last_serial} for n, t in self.terminals.items()},
        }

    async def run(self, sink: Sink) -> None:
        self._sink = sink
        app = Starlette(routes=[Route("/isapi/{door}", self._receive, methods=["POST"])])
        self._server = _QuietServer(uvicorn.Config(app, host=self.listener.host, port=self.listener.port, log_level="warning", lifespan="off", access_log=False))
        serving = asyncio.create_task(self._server.serve())
        try:
            await self._watch(sink)
        finally:
            self._server.should_exit = True
            await serving
            for task in list(self._tasks):
                task.cancel()
            for terminal in self.terminals.values():
                await terminal.client.aclose()

    async def _watch(self, sink: Sink) -> None:
        """Poll each terminal; when one comes back (or at start), fetch what it saw meanwhile."""
        while True:
            for terminal in self.terminals.values():
                up = await terminal.probe()
                if up and terminal.reachable is not True:
                    with contextlib.suppress(httpx.HTTPError, ValueError):
                        await terminal.recover(sink)
                if up != terminal.reachable:
                    terminal.reachable = up
                    await sink(Availability(terminal.door.name, up))  # the supervisor journals the change
            await asyncio.sleep(POLL_S)

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
        event = _event_json(body, request.headers.get("content-type", ""))
        if event is None:
            await self._sink(Recorded(terminal.door.name, "device_message_invalid", {"bytes": len(body)}))
            return JSONResponse({"statusCode": 6, "statusString": "Invalid Content"}, status_code=400)
        for item in self._interpret(terminal, event):
            if isinstance(item, tuple):  # a gap in serial numbers: fetch what was missed, in the background
                self._spawn(terminal.recover(self._sink, *item))
            else:
                await self._sink(item)
        return JSONResponse({"statusCode": 1, "statusString": "OK"})

    def _spawn(self, work: Any) -> None:
        async def guarded() -> None:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                await work

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _interpret(self, terminal: Terminal, event: dict[str, Any]) -> list[DeviceEvent | tuple[int, int]]:
        name, at = terminal.door.name, _when(event.get("dateTime"))
        kind = event.get("eventType")
        if kind == "ANPR" or "ANPR" in event:
            anpr = event.get("ANPR") or {}
            plate, confidence = anpr.get("licensePlate"), anpr.get("confidenceLevel")
            if not isinstance(plate, str) or not plate:
                return [Recorded(name, "plate_unread", {"event": "ANPR"}, at=at)]
            return [Presented(name, terminal.source, at=at, plate=plate, plate_confidence=int(confidence) if isinstance(confidence, int | float) else None)]
        if kind != "AccessControllerEvent":
            return []  # heartbeats and other event types
        ace = event.get("AccessControllerEvent") or {}
        out: list[DeviceEvent | tuple[int, int]] = []
        serial = ace.get("serialNo")
        if isinstance(serial, int):
            if terminal.last_serial is not None and serial <= terminal.last_serial:
                return []  # the terminal re-posted an event we have
            if terminal.last_serial is not None and serial > terminal.last_serial + 1:
                out.append((terminal.last_serial + 1, serial))
            terminal.saw(serial)
        reading = None
        if isinstance(ace.get("currTemperature"), int | float):
            reading = Reading(_celsius(float(ace["currTemperature"]), ace.get("thermometryUnit")), terminal.source, at, ace.get("isAbnomalTemperature") is True)
        qr = ace.get("QRCodeInfo")
        if not isinstance(qr, str) or not qr:
            if reading is not None:
                terminal.last_reading = reading  # a thermometry-only event; a later scan may use it if tied in time
            out.append(Recorded(name, "device_access_event", {"serialNo": serial, "major": ace.get("majorEventType"), "minor": ace.get("subEventType")}, at=at))
            return out
        out.append(Presented(name, terminal.source, at=at, qr=qr, temperature=reading or terminal.last_reading, device_serial=serial if isinstance(serial, int) else None))
        return out

    def relocks_itself(self, door: DoorConfig) -> bool:
        return True  # the terminal's own door-open time ends the pulse

    async def send(self, door: DoorConfig, cmd: Command) -> None:
        terminal = self.terminals[door.name]
        if terminal.reachable is False:
            raise DeviceUnavailable("terminal_unreachable")
        self._spawn(self._open(terminal, cmd))

    async def _open(self, terminal: Terminal, cmd: Command) -> None:
        """The PUT's answer is the terminal's own result; no answer leaves the supervisor to time out."""
        assert self._sink is not None
        timeout = max(0.1, (cmd.expires_at - utcnow()).total_seconds())
        try:
            answer = await terminal.client.put(f"/ISAPI/AccessControl/RemoteControl/door/{terminal.cfg.door_no}", content=OPEN_DOOR_XML, timeout=timeout, headers={"Content-Type": "application/xml"})
        except httpx.TimeoutException:
            return
        except httpx.HTTPError:
            await self._sink(CommandResult(terminal.door.name, cmd.cmd_id, "device_error"))
            return
        ok = answer.status_code == 200 and "<statusCode>1</statusCode>" in answer.text.replace(" ", "")
        await self._sink(CommandResult(terminal.door.name, cmd.cmd_id, "executed" if ok else "device_error"))


def _event_json(body: bytes, content_type: str) -> dict[str, Any] | None:
    """The event's JSON, from a JSON body or from the JSON part of a multipart post (pictures are skipped)."""
    candidates = [body]
    if content_type.startswith("multipart/"):
        boundary = content_type.partition("boundary=")[2].strip('"')
        candidates = [part.partition(b"\r\n\r\n")[2].rstrip(b"\r\n-") for part in body.split(b"--" + boundary.encode())] if boundary else []
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(data, dict):
            return data
    return None
