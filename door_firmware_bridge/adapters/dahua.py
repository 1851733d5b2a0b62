"""Dahua access terminals and controllers through the Dahua HTTP API ("API of HTTP Protocol
Specification" V2.76, 2019-07-25: "Subscribe to Event Message" eventManager.cgi, the access control
"Open Door" accessControl.cgi and "Find Access Control Record" recordFinder.cgi).

In: ``GET /cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=<s>`` (digest auth) answers
``multipart/x-mixed-replace`` with one ``text/plain`` part per event,
``Code=<code>;action=<Start|Stop|Pulse>;index=<n>[;data={json}]``, and a ``Heartbeat`` part every
``heartbeat`` seconds. Silence for twice that ends the connection (then the device is offline until
the stream is back). ``AccessControl`` is the terminal's own decision (``Status`` 1 = passed,
``UserID``, ``CardNo``, ``Method``, ``ErrorCode``, ``RecNo`` = its number in the terminal's
``AccessControlCardRec`` table): journalled, never acted on; ``DoorStatus`` (``Open``/``Close``) is
the door contact; ``ChassisIntruded`` is tamper; ``BreakIn`` and ``DoorNotClosed`` are the
terminal's own alarms, journalled.
Missed decisions: every time the stream is (re)attached, and so after a bridge restart, the
terminal's ``AccessControlCardRec`` records after the last ``RecNo`` the bridge journalled (the
cursor, door_firmware_bridge.adapters.cursor) are fetched with
``GET /cgi-bin/recordFinder.cgi?action=find&name=AccessControlCardRec&StartTime=<t>&EndTime=<t>&count=<n>``
and journalled as the same ``device_access_event`` (``recovered``: true). A live ``RecNo`` above the
cursor plus one fetches the numbers between. Each ``RecNo`` is journalled once, seen live or found.
Out: ``GET /cgi-bin/accessControl.cgi?action=openDoor&channel=<n>&UserID=<decision>&Type=Remote``
answers ``OK``; the terminal's door-open time is the relock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from door_firmware_bridge.adapters.base import Sink
from door_firmware_bridge.adapters.cursor import SerialCursor
from door_firmware_bridge.adapters.isapi.messages import MultipartReader, boundary_of
from door_firmware_bridge.config import DahuaTerminal, DoorConfig
from door_firmware_bridge.journal import Journal
from door_firmware_bridge.model import Availability, Command, CommandResult, DeviceEvent, DoorState, LocalDecision, Recorded, utcnow
from door_firmware_bridge.supervisor import DeviceUnavailable

log = logging.getLogger(__name__)
ALARMS = {"BreakIn", "DoorNotClosed", "Duress", "AlarmLocal"}
RECORD_TABLE = "AccessControlCardRec"
MAX_COUNT = 1024  # recordFinder.cgi's default and largest page
RECORD_LINE = re.compile(r"^records\[(\d+)\]\.(\w+)$")
SEARCH_SLACK = timedelta(minutes=5)  # the terminal's clock may trail the bridge's: the search window starts earlier, RecNo drops the overlap
FOUND_MAX = 4096  # decisions found by record searches in this run, remembered: the stream may still bring one of them
EPOCH = datetime(1970, 1, 1)


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


def _number(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def identity(data: dict[str, Any]) -> tuple[str, str, str]:
    """Who and what: the same in a live event and its record (the stream sends numbers, the search text)."""
    return str(data.get("UserID", "")).strip(), str(data.get("CardNo", "")).strip(), str(data.get("Status", "")).strip()


def access_decision(door: str, data: dict[str, Any], at: datetime, *, recovered: bool = False) -> LocalDecision:
    """An ``AccessControl`` event or an ``AccessControlCardRec`` record: the terminal's own decision."""
    status = data.get("Status")
    granted = None if status in (None, "") else str(status).strip() == "1"
    person = {k: v for k, v in {"user_id": data.get("UserID"), "card_no": data.get("CardNo")}.items() if v not in (None, "")}
    fields = {"rec_no": _number(data.get("RecNo")), "method": data.get("Method"), "error_code": data.get("ErrorCode"), "direction": data.get("Type"),
              "device_utc": data.get("UTC"), "device_time": data.get("CreateTime"), "recovered": recovered or None,
              "event": person or None}  # who it was stays under "event": personal data (idsvc.audit.chain)
    return LocalDecision(door, granted, {k: v for k, v in fields.items() if v not in (None, "")}, None, at=at)


def interpret(door: str, code: str, action: str, data: dict[str, Any]) -> list[DeviceEvent]:
    """The stream's events other than ``AccessControl`` (which goes through the terminal's cursor)."""
    if code == "DoorStatus":
        state = str(data.get("Status", "")).lower()
        return [DoorState(door, contact="open" if state == "open" else "closed" if state == "close" else "unknown")]
    if code == "ChassisIntruded":
        return [DoorState(door, tamper=action != "Stop")]
    if code in ALARMS and action in ("Start", "Pulse"):
        return [Recorded(door, "device_alarm", {"code": code, "event": data, "alarm": True})]
    return []


# --- record search (recordFinder.cgi) ----------------------------------------------------------


def local_seconds(at: datetime, zone: timezone) -> int:
    """A moment as the terminal's record search counts it: seconds of its local wall clock."""
    return int((at.astimezone(zone).replace(tzinfo=None) - EPOCH).total_seconds())


def record_time(value: str, zone: timezone) -> datetime:
    """``CreateTime``, in the terminal's local time (seconds, or ``YYYY-MM-DD HH:MM:SS`` on some firmware), as UTC."""
    value = value.strip()
    local = EPOCH + timedelta(seconds=int(value)) if value.isdigit() else datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    return local.replace(tzinfo=zone).astimezone(UTC)


def parse_records(text: str) -> list[dict[str, str]]:
    """``totalCount=``, ``found=``, then ``records[<i>].<Field>=<value>`` lines -> the records in order.
    Anything else (``Error``, a page from a proxy, a cut answer without ``found=``) is a ValueError."""
    found: int | None = None
    rows: dict[int, dict[str, str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"not a record answer: {line[:80]!r}")
        if key in ("found", "totalCount"):
            number = int(value)
            found = number if key == "found" else found
            continue
        match = RECORD_LINE.match(key)
        if match is not None:
            rows.setdefault(int(match[1]), {})[match[2]] = value
    if found is None:
        raise ValueError("no found= line")
    return [rows[i] for i in sorted(rows)]


class Terminal:
    """One Dahua terminal: its HTTP client, its RecNo cursor and the decisions its searches found lately."""

    def __init__(self, door: DoorConfig, cfg: DahuaTerminal, journal: Journal) -> None:
        self.door = door
        self.cfg = cfg
        self.zone = cfg.zone()
        self.client = httpx.AsyncClient(base_url=cfg.base_url, auth=httpx.DigestAuth(cfg.username, cfg.password), timeout=cfg.timeout_s)
        self.cursor = SerialCursor(journal, f"dahua:{door.name}:recno")
        self._found: OrderedDict[int, tuple[str, str, str]] = OrderedDict()
        self._searching = asyncio.Lock()

    def _note_found(self, rec_no: int, row: dict[str, Any]) -> None:
        self._found[rec_no] = identity(row)
        if len(self._found) > FOUND_MAX:
            self._found.popitem(last=False)

    async def live(self, data: dict[str, Any], sink: Sink) -> Coroutine[Any, Any, int] | None:
        """A decision from the stream; returns the record search to run when numbers before it were missed."""
        now = utcnow()
        rec_no = _number(data.get("RecNo"))
        if rec_no is None:  # firmware without RecNo in the event: journalled, nothing to correlate with
            await sink(access_decision(self.door.name, data, now))
            return None
        if self._found.get(rec_no) == identity(data):
            return None  # a record search ran ahead of the stream and journalled this very decision
        last, last_at = self.cursor.last, self.cursor.last_at
        place = self.cursor.place(rec_no, now)
        if place == "repost":
            return None
        await sink(access_decision(self.door.name, data, now))
        if place == "reset":  # the terminal counts from 1 again (its records were cleared): the cursor follows it
            await sink(Recorded(self.door.name, "device_serial_reset", {"rec_no": rec_no, "previous": last}))
            self.cursor.saw(rec_no, now, reset=True)
            self._found.clear()  # the old numbers name other decisions now
            return None
        self.cursor.journalled(rec_no, now)
        if place == "gap" and last is not None:
            return self.recover(sink, begin=last + 1, until=rec_no, since=last_at)
        return None

    async def recover(self, sink: Sink, begin: int | None = None, until: int | None = None, since: datetime | None = None) -> int:
        """Fetch and journal the records numbered ``begin`` (default: after the cursor) up to ``until``
        (exclusive; default: the newest), searching from ``since`` (default: the cursor's time); returns how many.
        Only a search that ran to its end moves the cursor over numbers it did not name (they do not exist)."""
        async with self._searching:
            if begin is None:
                if self.cursor.last is None and self.cursor.last_at is None:
                    self.cursor.start(utcnow())  # first contact: the terminal's history before the bridge is not the bridge's
                    return 0
                begin = (self.cursor.last or 0) + 1
            start = (since or self.cursor.last_at or utcnow()) - SEARCH_SLACK
            floor = self.cursor.last_at if self.cursor.last is None else None  # no decision journalled yet: none from before the first attach
            journalled, named, count = 0, dict[int, datetime](), self.cfg.record_page
            while True:
                params = {"action": "find", "name": RECORD_TABLE, "StartTime": str(local_seconds(start, self.zone)),
                          "EndTime": str(local_seconds(utcnow() + SEARCH_SLACK, self.zone)), "count": str(count)}
                answer = await self.client.get("/cgi-bin/recordFinder.cgi", params=params)
                answer.raise_for_status()
                rows = parse_records(answer.text)
                newest = start
                for row in rows:
                    rec_no = _number(row.get("RecNo"))
                    try:
                        at = record_time(row.get("CreateTime", ""), self.zone)
                    except ValueError:
                        log.warning("record search of %s: a record without a readable time is left out: %s", self.door.name, row)
                        continue
                    newest = max(newest, at)
                    if rec_no is None or rec_no < begin or (until is not None and rec_no >= until) or (floor is not None and at < floor):
                        continue
                    named[rec_no] = at
                    if self.cursor.has(rec_no):  # journalled already, live or found
                        continue
                    self._note_found(rec_no, row)
                    await sink(access_decision(self.door.name, row, at, recovered=True))
                    self.cursor.journalled(rec_no, at, store=False)
                    journalled += 1
                self.cursor.store()
                if len(rows) < count:
                    break
                # "find" has no offset: the next page starts at this one's newest time (RecNo drops the overlap);
                # a full page within one second is asked again for more.
                if newest > start:
                    start = newest
                elif count < MAX_COUNT:
                    count = min(count * 2, MAX_COUNT)
                else:
                    log.warning("record search of %s: %d records within one second, the rest is left for the next search", self.door.name, count)
                    return journalled
            upto = until - 1 if until is not None else max(named, default=None)
            if upto is not None:
                self.cursor.settled(upto, named.get(upto) or self.cursor.last_at or utcnow())
            return journalled


class DahuaAdapter:
    def __init__(self, doors: list[DoorConfig], journal: Journal) -> None:
        self.doors = doors
        self.terminals = {d.name: Terminal(d, d.dahua, journal) for d in doors if d.dahua is not None}
        self.connected: dict[str, bool] = {}
        self._sink: Sink | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def health(self) -> dict[str, Any]:
        return {"streams": dict(self.connected), "last_rec_no": {n: t.cursor.last for n, t in self.terminals.items()}}

    def relocks_itself(self, door: DoorConfig) -> bool:
        return True  # the terminal's own door-open time ends the pulse

    async def run(self, sink: Sink) -> None:
        self._sink = sink
        try:
            async with asyncio.TaskGroup() as group:
                for terminal in self.terminals.values():
                    group.create_task(self._stream(terminal, sink))
        finally:
            for task in list(self._tasks):
                task.cancel()
            for terminal in self.terminals.values():
                await terminal.client.aclose()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _search(self, terminal: Terminal, sink: Sink, search: Coroutine[Any, Any, int]) -> None:
        """A record search in the background; a failure is journalled and the cursor stays, so the next (re)connect tries again."""
        try:
            found = await search
        except httpx.HTTPError as exc:
            log.info("record search of %s failed: %s", terminal.door.name, exc)
        except ValueError as exc:  # a garbled answer: never the adapter's end
            await sink(Recorded(terminal.door.name, "device_records_unreadable", {"error": str(exc)[:200], "alarm": True}))
        else:
            if found:
                log.info("record search of %s: %d decisions the stream missed", terminal.door.name, found)

    async def _stream(self, terminal: Terminal, sink: Sink) -> None:
        name = terminal.door.name
        backoff = 0.5
        while True:
            try:
                await self._attach(terminal, sink)
            except (httpx.HTTPError, TimeoutError) as exc:
                log.info("event stream of %s ended: %s", name, exc)
            if self.connected.get(name) is not False:
                self.connected[name] = False
                await sink(Availability(name, False))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _attach(self, terminal: Terminal, sink: Sink) -> None:
        name, cfg = terminal.door.name, terminal.cfg
        silence = cfg.heartbeat_s * 2
        params = {"action": "attach", "codes": "[All]", "heartbeat": str(cfg.heartbeat_s)}
        async with terminal.client.stream("GET", "/cgi-bin/eventManager.cgi", params=params, timeout=httpx.Timeout(cfg.timeout_s, read=silence)) as answer:
            answer.raise_for_status()
            reader = MultipartReader(boundary_of(answer.headers.get("content-type", "")) or "myboundary")
            if self.connected.get(name) is not True:
                self.connected[name] = True
                await sink(Availability(name, True))
            # Attached first, searched after: a decision made in between is seen live or found, and journalled once either way.
            self._spawn(self._search(terminal, sink, terminal.recover(sink)))
            chunks = answer.aiter_raw()
            while True:
                async with asyncio.timeout(silence):  # TimeoutError: no heartbeat, reconnect
                    chunk = await anext(chunks)
                for _, body in reader.feed(chunk):
                    parsed = parse_event(body.decode("utf-8", "replace"))
                    if parsed is None:
                        continue
                    code, action, data = parsed
                    if code == "AccessControl":
                        gap = await terminal.live(data, sink)
                        if gap is not None:
                            self._spawn(self._search(terminal, sink, gap))
                    else:
                        for event in interpret(name, code, action, data):
                            await sink(event)

    async def send(self, door: DoorConfig, cmd: Command) -> None:
        if self.connected.get(door.name) is False:
            raise DeviceUnavailable("terminal_unreachable")
        self._spawn(self._open(door, cmd))

    async def _open(self, door: DoorConfig, cmd: Command) -> None:
        """``OK`` is the terminal's own result; no answer leaves the supervisor to time out."""
        assert self._sink is not None
        terminal = self.terminals[door.name]
        params = {"action": "openDoor", "channel": str(terminal.cfg.channel), "UserID": (cmd.decision_id or cmd.cmd_id)[:32], "Type": "Remote"}
        timeout = max(0.1, (cmd.expires_at - utcnow()).total_seconds())
        try:
            answer = await terminal.client.get("/cgi-bin/accessControl.cgi", params=params, timeout=timeout)
        except httpx.TimeoutException:
            return
        except httpx.HTTPError:
            await self._sink(CommandResult(door.name, cmd.cmd_id, "device_error"))
            return
        ok = answer.status_code == 200 and answer.text.strip().startswith("OK")
        await self._sink(CommandResult(door.name, cmd.cmd_id, "executed" if ok else "device_error"))
