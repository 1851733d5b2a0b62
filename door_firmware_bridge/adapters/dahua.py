"""Dahua access terminals and controllers through the Dahua HTTP API ("API of HTTP Protocol
Specification" V2.76, 2019-07-25: "Subscribe to Event Message" eventManager.cgi, and the access
control "Open Door" accessControl.cgi).

In: ``GET /cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=<s>`` (digest auth) answers
``multipart/x-mixed-replace`` with one ``text/plain`` part per event,
``Code=<code>;action=<Start|Stop|Pulse>;index=<n>[;data={json}]``, and a ``Heartbeat`` part every
``heartbeat`` seconds. Silence for twice that ends the connection (then the device is offline until
the stream is back). ``AccessControl`` is the terminal's own decision (``Status`` 1 = passed,
``UserID``, ``CardNo``, ``Method``, ``ErrorCode``): journalled, never acted on; ``DoorStatus``
(``Open``/``Close``) is the door contact; ``ChassisIntruded`` is tamper; ``BreakIn`` and
``DoorNotClosed`` are the terminal's own alarms, journalled.
Out: ``GET /cgi-bin/accessControl.cgi?action=openDoor&channel=<n>&UserID=<decision>&Type=Remote``
answers ``OK``; the terminal's door-open time is the relock.
Missed events are not fetched after a reconnect (the API's record search is not used): the gap is
journalled as ``device_offline``/``device_online``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from door_firmware_bridge.adapters.base import Sink
from door_firmware_bridge.adapters.isapi.messages import MultipartReader, boundary_of
from door_firmware_bridge.config import DahuaTerminal, DoorConfig
from door_firmware_bridge.model import Availability, Command, CommandResult, DeviceEvent, DoorState, LocalDecision, Recorded, utcnow
from door_firmware_bridge.supervisor import DeviceUnavailable

log = logging.getLogger(__name__)
ALARMS = {"BreakIn", "DoorNotClosed", "Duress", "AlarmLocal"}


def parse_event(text: str) -> tuple[str, str, dict[str, Any]] | None:
    """``Code=X;action=Y;index=Z;data={...}`` -> (code, action, data); None for a heartbeat or noise."""
    text = text.strip()
    if not text.startswith("Code="):
        return None
    head, _, blob = text.partition(";data=")
    fields = dict(part.split("=", 1) for part in head.split(";") if "=" in part)
    try:
        data = json.loads(blob) if blob else {}
    except ValueError:
        data = {"unreadable": blob[:200]}
    return fields.get("Code", ""), fields.get("action", ""), data if isinstance(data, dict) else {}


def interpret(door: str, code: str, action: str, data: dict[str, Any]) -> list[DeviceEvent]:
    if code == "AccessControl":
        status = data.get("Status")
        granted = None if status is None else bool(status == 1 or status == "1")
        person = {k: v for k, v in {"user_id": data.get("UserID"), "card_no": data.get("CardNo")}.items() if v not in (None, "")}
        fields = {"method": data.get("Method"), "error_code": data.get("ErrorCode"), "direction": data.get("Type"), "device_utc": data.get("UTC"),
                  "event": person or None}  # who it was stays under "event": personal data (idsvc.audit.chain)
        return [LocalDecision(door, granted, {k: v for k, v in fields.items() if v not in (None, "")}, None)]
    if code == "DoorStatus":
        state = str(data.get("Status", "")).lower()
        return [DoorState(door, contact="open" if state == "open" else "closed" if state == "close" else "unknown")]
    if code == "ChassisIntruded":
        return [DoorState(door, tamper=action != "Stop")]
    if code in ALARMS and action in ("Start", "Pulse"):
        return [Recorded(door, "device_alarm", {"code": code, "event": data, "alarm": True})]
    return []


class DahuaAdapter:
    def __init__(self, doors: list[DoorConfig]) -> None:
        self.doors = doors
        self.terminals: dict[str, tuple[DoorConfig, DahuaTerminal, httpx.AsyncClient]] = {
            d.name: (d, d.dahua, httpx.AsyncClient(base_url=d.dahua.base_url, auth=httpx.DigestAuth(d.dahua.username, d.dahua.password), timeout=d.dahua.timeout_s))
            for d in doors if d.dahua is not None
        }
        self.connected: dict[str, bool] = {}
        self._sink: Sink | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def health(self) -> dict[str, Any]:
        return {"streams": dict(self.connected)}

    def relocks_itself(self, door: DoorConfig) -> bool:
        return True  # the terminal's own door-open time ends the pulse

    async def run(self, sink: Sink) -> None:
        self._sink = sink
        try:
            async with asyncio.TaskGroup() as group:
                for name in self.terminals:
                    group.create_task(self._stream(name, sink))
        finally:
            for task in list(self._tasks):
                task.cancel()
            for _, _, client in self.terminals.values():
                await client.aclose()

    async def _stream(self, name: str, sink: Sink) -> None:
        door, cfg, client = self.terminals[name]
        backoff = 0.5
        while True:
            try:
                await self._attach(name, cfg, client, sink)
            except (httpx.HTTPError, TimeoutError) as exc:
                log.info("event stream of %s ended: %s", name, exc)
            if self.connected.get(name) is not False:
                self.connected[name] = False
                await sink(Availability(name, False))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _attach(self, name: str, cfg: DahuaTerminal, client: httpx.AsyncClient, sink: Sink) -> None:
        silence = cfg.heartbeat_s * 2
        params = {"action": "attach", "codes": "[All]", "heartbeat": str(cfg.heartbeat_s)}
        async with client.stream("GET", "/cgi-bin/eventManager.cgi", params=params, timeout=httpx.Timeout(cfg.timeout_s, read=silence)) as answer:
            answer.raise_for_status()
            reader = MultipartReader(boundary_of(answer.headers.get("content-type", "")) or "myboundary")
            if self.connected.get(name) is not True:
                self.connected[name] = True
                await sink(Availability(name, True))
            chunks = answer.aiter_raw()
            while True:
                async with asyncio.timeout(silence):  # TimeoutError: no heartbeat, reconnect
                    chunk = await anext(chunks)
                for _, body in reader.feed(chunk):
                    parsed = parse_event(body.decode("utf-8", "replace"))
                    if parsed is not None:
                        for event in interpret(name, *parsed):
                            await sink(event)

    async def send(self, door: DoorConfig, cmd: Command) -> None:
        if self.connected.get(door.name) is False:
            raise DeviceUnavailable("terminal_unreachable")
        task = asyncio.get_running_loop().create_task(self._open(door, cmd))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, door: DoorConfig, cmd: Command) -> None:
        """``OK`` is the terminal's own result; no answer leaves the supervisor to time out."""
        assert self._sink is not None
        _, cfg, client = self.terminals[door.name]
        params = {"action": "openDoor", "channel": str(cfg.channel), "UserID": (cmd.decision_id or cmd.cmd_id)[:32], "Type": "Remote"}
        timeout = max(0.1, (cmd.expires_at - utcnow()).total_seconds())
        try:
            answer = await client.get("/cgi-bin/accessControl.cgi", params=params, timeout=timeout)
        except httpx.TimeoutException:
            return
        except httpx.HTTPError:
            await self._sink(CommandResult(door.name, cmd.cmd_id, "device_error"))
            return
        ok = answer.status_code == 200 and answer.text.strip().startswith("OK")
        await self._sink(CommandResult(door.name, cmd.cmd_id, "executed" if ok else "device_error"))



