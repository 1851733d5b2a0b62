"""A Dahua access terminal as the Dahua HTTP API describes it ("API of HTTP Protocol Specification"
V2.76): written from that document, not from the bridge's adapter.

- HTTP digest auth.
- ``GET /cgi-bin/eventManager.cgi?action=attach&codes=[<code>,...|All][&heartbeat=<s>]``: 200 with
  ``multipart/x-mixed-replace; boundary=myboundary``; each event a ``text/plain`` part
  ``Code=<code>;action=<Start|Stop|Pulse>;index=0[;data={json}]``, and ``Heartbeat`` every ``heartbeat``
  seconds.
- ``GET /cgi-bin/accessControl.cgi?action=openDoor&channel=<n>[&UserID=..&Type=Remote]``: ``OK``; the
  door stays open ``door_open_s`` and the terminal reports ``DoorStatus`` itself.
- The terminal's own decisions are ``AccessControl`` events (``Status`` 1 = passed, ``RecNo`` its number
  in the record table), and each is also a record in its ``AccessControlCardRec`` table, whether a
  stream is attached or not.
- ``GET /cgi-bin/recordFinder.cgi?action=find&name=AccessControlCardRec&StartTime=<t>&EndTime=<t>[&count=<n>]``
  ("Find Access Control Record"): the records whose ``CreateTime`` is within [StartTime, EndTime],
  oldest first, at most ``count`` (default 1024), as text lines ``totalCount=<all matching>``,
  ``found=<in this answer>``, ``records[<i>].<Field>=<value>``. Times, asked and answered, are seconds
  of the terminal's local clock (``utc_offset``). A bad request answers ``Error`` / ``Bad Request!``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from door_firmware_bridge.adapters.isapi import QuietServer

REALM = "Login to 7J0A5C1PAJ00001"
BOUNDARY = "myboundary"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - HTTP digest auth is MD5 by definition


@dataclass
class DahuaSim:
    username: str = "admin"
    password: str = "dahua-pass-1"
    host: str = "127.0.0.1"
    door_open_s: float = 2.0
    silent: bool = False  # stops sending anything, heartbeats included (a hung terminal)
    opens: list[dict[str, str]] = field(default_factory=list)  # query parameters of each openDoor
    utc_offset: timedelta = timedelta(0)  # the terminal's clock zone (a Chinese terminal: +08:00)
    records: list[dict[str, Any]] = field(default_factory=list)  # its AccessControlCardRec table
    finds: list[dict[str, str]] = field(default_factory=list)  # query parameters of each record search
    record_answer: str | None = None  # when set, every record search answers this text instead (a garbled terminal)
    _server: QuietServer | None = None
    _nonces: set[str] = field(default_factory=set)
    _streams: list[tuple[set[str] | None, asyncio.Queue[bytes]]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.servers[0].sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        app = Starlette(routes=[Route("/cgi-bin/eventManager.cgi", self._event_manager, methods=["GET"]),
                                Route("/cgi-bin/accessControl.cgi", self._access_control, methods=["GET"]),
                                Route("/cgi-bin/recordFinder.cgi", self._record_finder, methods=["GET"])])
        self._server = QuietServer(uvicorn.Config(app, host=self.host, port=0, log_level="warning", lifespan="off", access_log=False))
        self._serving = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for _, queue in self._streams:
            queue.put_nowait(b"")
        if self._server is not None:
            self._server.should_exit = True
            await self._serving

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Digest "):
            return False
        parts = dict((k.strip(), v.strip().strip('"')) for k, _, v in (item.partition("=") for item in header[7:].split(",")))
        if parts.get("username") != self.username or parts.get("nonce") not in self._nonces:
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = _md5(f"{request.method}:{parts.get('uri')}")
        expected = _md5(f"{ha1}:{parts['nonce']}:{parts.get('nc')}:{parts.get('cnonce')}:{parts.get('qop')}:{ha2}")
        return secrets.compare_digest(expected, parts.get("response", ""))

    def _challenge(self) -> Response:
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        return Response("Error", status_code=401, headers={"WWW-Authenticate": f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", opaque="{secrets.token_hex(8)}"'})

    async def _event_manager(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._challenge()
        if request.query_params.get("action") != "attach":
            return PlainTextResponse("Error\r\nBad Request!", status_code=400)
        codes = request.query_params.get("codes", "[All]").strip("[]").split(",")
        wanted = None if "All" in codes else set(codes)
        heartbeat = float(request.query_params.get("heartbeat", "0") or 0)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        entry = (wanted, queue)
        self._streams.append(entry)

        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    try:
                        async with asyncio.timeout(heartbeat if heartbeat > 0 else None):
                            part = await queue.get()
                    except TimeoutError:
                        if self.silent:
                            continue
                        part = self._part("Heartbeat")
                    if not part:
                        return
                    yield part
            finally:
                self._streams.remove(entry)

        return StreamingResponse(body(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")

    @staticmethod
    def _part(text: str) -> bytes:
        payload = text.encode()
        return f"--{BOUNDARY}\r\nContent-Type: text/plain\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload + b"\r\n\r\n"

    def emit(self, code: str, action: str = "Pulse", data: dict[str, Any] | None = None) -> None:
        text = f"Code={code};action={action};index=0" + (f";data={json.dumps(data, indent=1)}" if data is not None else "")
        for wanted, queue in self._streams:
            if not self.silent and (wanted is None or code in wanted):
                queue.put_nowait(self._part(text))

    async def _access_control(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._challenge()
        params = dict(request.query_params)
        if params.get("action") != "openDoor" or not params.get("channel", "").isdigit():
            return PlainTextResponse("Error\r\nBad Request!", status_code=400)
        self.opens.append(params)
        asyncio.get_running_loop().create_task(self._door_cycle())
        return PlainTextResponse("OK")

    async def _record_finder(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._challenge()
        params = dict(request.query_params)
        self.finds.append(params)
        bad = PlainTextResponse("Error\r\nBad Request!", status_code=400)
        if params.get("action") != "find" or params.get("name") != "AccessControlCardRec":
            return bad
        try:
            start, end = int(params.get("StartTime", "0")), int(params.get("EndTime", str(2**31)))
            count = int(params.get("count", "1024"))
        except ValueError:
            return bad
        if self.record_answer is not None:
            return PlainTextResponse(self.record_answer)
        matching = [r for r in self.records if start <= r["CreateTime"] <= end]
        page = matching[:max(count, 0)]
        lines = [f"totalCount={len(matching)}", f"found={len(page)}"]
        lines += [f"records[{i}].{key}={value}" for i, record in enumerate(page) for key, value in record.items()]
        return PlainTextResponse("\r\n".join(lines) + "\r\n")

    async def _door_cycle(self) -> None:
        self.emit("DoorStatus", data={"Status": "Open", "UTC": int(time.time())})
        await asyncio.sleep(self.door_open_s)
        self.emit("DoorStatus", data={"Status": "Close", "UTC": int(time.time())})

    # --- what happens at the door --------------------------------------------------------------

    def local_now(self) -> int:
        """Now on the terminal's clock: seconds of its local wall time."""
        return int(time.time() + self.utc_offset.total_seconds())

    def card(self, user_id: str, passed: bool, *, deliver: bool = True) -> None:
        """The terminal decided by itself on a card (Method 1) or face (Method 15): a record in its
        table, and an event on any attached stream (``deliver=False``: the event is lost on the way)."""
        record = {"RecNo": len(self.records) + 1, "CreateTime": self.local_now(), "CardNo": "A1B2C3D4", "UserID": user_id, "Status": 1 if passed else 0,
                  "Method": 15, "Type": "Entry", "ErrorCode": 0 if passed else 16, "Door": 0, "ReaderID": "1"}
        self.records.append(record)
        if deliver:
            self.emit("AccessControl", data={k: v for k, v in record.items() if k != "CreateTime"} | {"UTC": int(time.time())})

    def forced(self) -> None:
        self.emit("BreakIn", "Start", {"Name": "Door1", "UTC": int(time.time())})
        self.emit("DoorStatus", data={"Status": "Open", "UTC": int(time.time())})
