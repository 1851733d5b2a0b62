"""A Hikvision-style park-gate terminal: posts ISAPI events to the bridge and obeys door commands.

It speaks HTTP digest auth (the terminal's own users), numbers its events with serialNo, keeps them
for ``POST /ISAPI/AccessControl/AcsEvent`` searches, and can be told to lose a post (network blip)
or to stop answering (power cut). ``door_open_s`` is the terminal's own door-open time: the relock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from door_firmware_bridge.adapters.isapi import _QuietServer

REALM = "DS-K1T671"
OK_XML = '<?xml version="1.0" encoding="UTF-8"?><ResponseStatus><statusCode>1</statusCode><statusString>OK</statusString></ResponseStatus>'


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - HTTP digest auth is MD5 by definition


@dataclass
class GateSim:
    bridge_url: str  # where to post events: http://host:port/isapi/<door>
    username: str = "admin"
    password: str = "gate-pass-1"
    door_open_s: float = 3.0
    host: str = "127.0.0.1"
    port: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    opens: list[float] = field(default_factory=list)
    unreachable: bool = False
    serial: int = 100
    door_unlocked_until: float = 0.0
    _server: _QuietServer | None = None
    _nonces: set[str] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.servers[0].sockets[0].getsockname()[1]}"

    @property
    def unlocked(self) -> bool:
        return time.monotonic() < self.door_unlocked_until

    async def start(self) -> None:
        app = Starlette(routes=[
            Route("/ISAPI/System/deviceInfo", self._device_info, methods=["GET"]),
            Route("/ISAPI/AccessControl/RemoteControl/door/{n}", self._remote_control, methods=["PUT"]),
            Route("/ISAPI/AccessControl/AcsEvent", self._search, methods=["POST"]),
        ])
        self._server = _QuietServer(uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", lifespan="off", access_log=False))
        self._serving = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            await self._serving

    # --- digest auth ---------------------------------------------------------------------------

    def _challenge(self) -> Response:
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        return Response(status_code=401, headers={"WWW-Authenticate": f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'})

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Digest "):
            return False
        parts = dict(
            (k.strip(), v.strip().strip('"')) for k, _, v in (item.partition("=") for item in header[7:].split(","))
        )
        if parts.get("username") != self.username or parts.get("nonce") not in self._nonces:
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = _md5(f"{request.method}:{parts.get('uri')}")
        expected = _md5(f"{ha1}:{parts['nonce']}:{parts.get('nc')}:{parts.get('cnonce')}:{parts.get('qop')}:{ha2}")
        return secrets.compare_digest(expected, parts.get("response", ""))

    async def _guard(self, request: Request) -> Response | None:
        deadline = time.monotonic() + 30
        while self.unreachable and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # a dead terminal: silent until the client gives up (or it comes back)
        return None if self._authorised(request) else self._challenge()

    # --- device endpoints ----------------------------------------------------------------------

    async def _device_info(self, request: Request) -> Response:
        return await self._guard(request) or Response('<DeviceInfo><model>DS-K1T671TM-3XF</model></DeviceInfo>', media_type="application/xml")

    async def _remote_control(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        body = (await request.body()).decode()
        if "<cmd>open</cmd>" not in body.replace(" ", ""):
            return Response("<ResponseStatus><statusCode>4</statusCode></ResponseStatus>", status_code=400, media_type="application/xml")
        self.opens.append(time.monotonic())
        self.door_unlocked_until = time.monotonic() + self.door_open_s  # the terminal relocks by itself
        return Response(OK_XML, media_type="application/xml")

    async def _search(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        cond = (await request.json()).get("AcsEventCond", {})
        begin, end = int(cond.get("beginSerialNo", 0)), int(cond.get("endSerialNo", 1 << 62))
        matches = [e["AccessControllerEvent"] | {"time": e["dateTime"]} for e in self.events if begin <= e["AccessControllerEvent"]["serialNo"] <= end]
        position, limit = int(cond.get("searchResultPosition", 0)), int(cond.get("maxResults", 30))
        page = matches[position : position + limit]
        status = "MORE" if position + limit < len(matches) else ("OK" if page else "NO MATCH")
        return JSONResponse({"AcsEvent": {"searchID": cond.get("searchID"), "responseStatusStrg": status, "numOfMatches": len(page), "totalMatches": len(matches), "InfoList": page}})

    # --- what happens at the gate --------------------------------------------------------------

    async def _post(self, event: dict[str, Any], deliver: bool) -> None:
        if not deliver:
            return  # lost on the way: the bridge must recover it by serialNo
        async with httpx.AsyncClient(timeout=5) as client:
            with contextlib.suppress(httpx.HTTPError):
                await client.post(self.bridge_url, json=event)

    async def access(self, qr: str | None = None, temperature: float | None = None, abnormal: bool = False, unit: str = "celsius", deliver: bool = True, at: datetime | None = None) -> dict[str, Any]:
        """A person at the terminal: a QR scan and/or a temperature reading, as one numbered event."""
        self.serial += 1
        ace: dict[str, Any] = {"majorEventType": 5, "subEventType": 75 if qr else 0, "serialNo": self.serial, "pictureURL": f"{self.base_url}/pic/{self.serial}.jpg"}
        if qr is not None:
            ace["QRCodeInfo"] = qr
        if temperature is not None:
            ace |= {"currTemperature": temperature, "isAbnomalTemperature": abnormal, "thermometryUnit": unit}
        event = {"eventType": "AccessControllerEvent", "dateTime": (at or datetime.now(UTC)).isoformat(), "AccessControllerEvent": ace}
        self.events.append(event)
        await self._post(event, deliver)
        return event

    async def plate(self, plate: str, confidence: int = 95, deliver: bool = True) -> dict[str, Any]:
        """The lane's ANPR camera read a plate."""
        event = {"eventType": "ANPR", "dateTime": datetime.now(UTC).isoformat(), "ANPR": {"licensePlate": plate, "confidenceLevel": confidence}}
        await self._post(event, deliver)
        return event
