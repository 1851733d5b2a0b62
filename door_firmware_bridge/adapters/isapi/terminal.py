"""One Hikvision terminal: the bridge's HTTP client for it (digest auth) and what the bridge keeps
about it (its event serial cursor, its reachability, its last standalone temperature reading).

Endpoints (ISAPI Face Recognition Terminals, Pro Series): ``GET /ISAPI/System/deviceInfo`` (probe),
``PUT /ISAPI/AccessControl/RemoteControl/door/<n>`` ``<cmd>open</cmd>`` (§12, door control),
``PUT /ISAPI/AccessControl/remoteCheck?format=json`` (§9.17, §12.5.16.2: the verdict of a remote
verification), ``POST /ISAPI/AccessControl/AcsEvent?format=json`` (event search by serial, for
recovery), and the person/face endpoints used by people.py.

Serial numbers (``serialNo``) count up from 1 and start again after a reset or when the log wraps
(§12.5.14: "overwritten repeatedly when reaching the maximum"); the cursor that follows them
(door_firmware_bridge.adapters.cursor) tells a re-post from a restarted terminal
(``device_serial_reset``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import datetime
from typing import Any

import httpx

from door_firmware_bridge.adapters.base import Sink
from door_firmware_bridge.adapters.cursor import Place, SerialCursor
from door_firmware_bridge.config import DoorConfig, IsapiTerminal
from door_firmware_bridge.journal import Journal
from door_firmware_bridge.model import Reading, Recorded, utcnow

RECOVERY_PAGE = 30
OPEN_DOOR_XML = '<?xml version="1.0" encoding="UTF-8"?><RemoteControlDoor><cmd>open</cmd></RemoteControlDoor>'
INFO_MAX = 1024  # RemoteCheck.info: range [1, 1024]


def terminal_time(text: Any) -> datetime:
    """An ISAPI time (TD "+08:00" or TZ "Z" form, §4.2.4); one without a zone is not trusted: now."""
    try:
        at = datetime.fromisoformat(str(text))
    except ValueError:
        return utcnow()
    return at if at.tzinfo else utcnow()


def ok_status(answer: httpx.Response) -> bool:
    """ISAPI's success: HTTP 200 and statusCode 1 (JSON ``"statusCode": 1`` or XML ``<statusCode>1</statusCode>``)."""
    if answer.status_code != 200:
        return False
    text = answer.text.replace(" ", "")
    if text.startswith("{"):
        try:
            return json.loads(text).get("statusCode") == 1
        except ValueError:
            return False
    return "<statusCode>1</statusCode>" in text


class Terminal:
    def __init__(self, door: DoorConfig, cfg: IsapiTerminal, journal: Journal) -> None:
        self.door = door
        self.cfg = cfg
        self.journal = journal
        self.client = httpx.AsyncClient(base_url=cfg.base_url, auth=httpx.DigestAuth(cfg.username, cfg.password), timeout=cfg.timeout_s)
        self.cursor = SerialCursor(journal, f"isapi:{door.name}:serial")
        self.reachable: bool | None = None
        self.last_reading: Reading | None = None
        self.faces_removed: set[str] = set()  # people whose face the bridge deleted from the terminal (template withdrawn)
        self._recovering = asyncio.Lock()

    @property
    def source(self) -> str:
        return f"isapi:{self.door.name}"

    @property
    def last_serial(self) -> int | None:
        return self.cursor.last

    @property
    def last_serial_at(self) -> datetime | None:
        return self.cursor.last_at

    # --- serial numbers -----------------------------------------------------------------------

    def place(self, serial: int, at: datetime) -> Place:
        return self.cursor.place(serial, at)

    def saw(self, serial: int, at: datetime, *, reset: bool = False) -> None:
        self.cursor.saw(serial, at, reset=reset)

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
                    at = terminal_time(info.get("time"))
                    await sink(Recorded(self.door.name, "device_event_recovered", {"serialNo": serial, "event": info}, at=at))
                    self.saw(serial, at)
                    found += 1
                position += len(infos)
                if body.get("responseStatusStrg") != "MORE" or not infos:
                    return found

    # --- requests -----------------------------------------------------------------------------

    async def probe(self) -> bool:
        try:
            answer = await self.client.get("/ISAPI/System/deviceInfo")
            return answer.status_code == 200
        except httpx.HTTPError:
            return False

    async def open_door(self, timeout_s: float) -> bool:
        answer = await self.client.put(f"/ISAPI/AccessControl/RemoteControl/door/{self.cfg.door_no}", content=OPEN_DOOR_XML,
                                       timeout=timeout_s, headers={"Content-Type": "application/xml"})
        return ok_status(answer)

    async def verdict(self, serial: int, success: bool, info: str, timeout_s: float) -> bool:
        """Answer a remote verification; the terminal shows it and, on success, opens the door itself."""
        body = {"RemoteCheck": {"serialNo": serial, "checkResult": "success" if success else "failed", "info": (info or "-")[:INFO_MAX]}}
        answer = await self.client.put("/ISAPI/AccessControl/remoteCheck", params={"format": "json"}, json=body, timeout=timeout_s)
        return ok_status(answer)
