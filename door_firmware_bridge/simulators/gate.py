"""A Hikvision face-recognition terminal (DS-K1T671 class) at a park gate, and the lane's ANPR camera,
as the ISAPI documentation describes them (ISAPI Face Recognition Terminals, Pro Series, converted in
AdilHikvision/projectx; the Traffic SDK guide for ANPR XML) - written from those documents, not from
the bridge's adapter.

- Digest auth on every endpoint (§3.3), the terminal's own users.
- Events numbered by ``serialNo`` from 1 (here from 101), kept for ``POST /ISAPI/AccessControl/AcsEvent``
  searches (§12.5.6); delivered by posting to the listening host (HTTP listening, §4.3.2: JSON, or
  multipart with a picture) or on ``GET /ISAPI/Event/notification/alertStream`` (§4.3.1.1: an endless
  multipart body with heartBeat events, one per ``heartbeat_s``).
- Remote verification (§9.17, asynchronous listening): with ``remote_check`` the terminal marks its
  events ``remoteCheck: true`` and waits ``remote_check_timeout_s`` for
  ``PUT /ISAPI/AccessControl/remoteCheck`` with the same ``serialNo``; it shows the verdict and on
  ``success`` opens the door for ``door_open_s`` itself; no verdict in time is a failure.
- Its own person list and face library (§9.16, §9.11): ``UserInfo/Search|Record|Modify``,
  ``UserInfoDetail/Delete`` (deleting a person deletes their face), ``FDLib/FDSearch/Delete``. A face
  it recognises is checked against that list and the person's ``Valid`` window: when it decides alone
  it reports major 5 / minor 0x4b (face authentication completed) or 0x4c (failed); with remote
  verification it asks, naming the person (``employeeNoString``).
- Door control ``PUT /ISAPI/AccessControl/RemoteControl/door/<n>`` ``<cmd>open</cmd>``.
- The terminal's clock can be set off (``clock_offset_s``) and the terminal rebooted (serials restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from door_firmware_bridge.adapters.isapi import QuietServer

REALM = "DS-K1T671"
CHINA = timezone(timedelta(hours=8))
OK_XML = '<?xml version="1.0" encoding="UTF-8"?><ResponseStatus><statusCode>1</statusCode><statusString>OK</statusString></ResponseStatus>'
OK_JSON = {"statusCode": 1, "statusString": "OK", "subStatusCode": "ok"}
FACE_PASS, FACE_FAIL = 0x4B, 0x4C
STREAM_BOUNDARY = "boundary"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - HTTP digest auth is MD5 by definition


@dataclass
class Verdict:
    serial: int
    result: str  # success, failed, timeout
    info: str | None


@dataclass
class GateSim:
    bridge_url: str  # the listening host: http://host:port/isapi/<door>
    username: str = "admin"
    password: str = "gate-pass-1"
    door_open_s: float = 3.0
    host: str = "127.0.0.1"
    port: int = 0
    remote_check: bool = False
    remote_check_timeout_s: float = 5.0
    heartbeat_s: float = 1.0
    events: list[dict[str, Any]] = field(default_factory=list)
    opens: list[float] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # employeeNo -> UserInfo
    faces: set[str] = field(default_factory=set)  # FPIDs in the face library (= employeeNo)
    unreachable: bool = False
    serial: int = 100
    clock_offset_s: float = 0.0  # how far the terminal's own clock is from the real time (+ = fast)
    door_unlocked_until: float = 0.0
    _server: QuietServer | None = None
    _nonces: set[str] = field(default_factory=set)
    _waiting: dict[int, asyncio.Future[Verdict]] = field(default_factory=dict)
    _streams: list[asyncio.Queue[bytes]] = field(default_factory=list)

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
            Route("/ISAPI/AccessControl/remoteCheck", self._remote_check, methods=["PUT"]),
            Route("/ISAPI/AccessControl/AcsEvent", self._search, methods=["POST"]),
            Route("/ISAPI/AccessControl/UserInfo/Search", self._user_search, methods=["POST"]),
            Route("/ISAPI/AccessControl/UserInfo/Record", self._user_record, methods=["POST"]),
            Route("/ISAPI/AccessControl/UserInfo/Modify", self._user_modify, methods=["PUT"]),
            Route("/ISAPI/AccessControl/UserInfoDetail/Delete", self._user_delete, methods=["PUT"]),
            Route("/ISAPI/Intelligent/FDLib/FDSearch/Delete", self._face_delete, methods=["PUT"]),
            Route("/ISAPI/Event/notification/alertStream", self._alert_stream, methods=["GET"]),
        ])
        self._server = QuietServer(uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", lifespan="off", access_log=False))
        self._serving = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for queue in self._streams:
            queue.put_nowait(b"")  # ends each open stream
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
        parts = dict((k.strip(), v.strip().strip('"')) for k, _, v in (item.partition("=") for item in header[7:].split(",")))
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
        return await self._guard(request) or Response("<DeviceInfo><model>DS-K1T671TM-3XF</model></DeviceInfo>", media_type="application/xml")

    async def _remote_control(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        body = (await request.body()).decode()
        if "<cmd>open</cmd>" not in body.replace(" ", ""):
            return Response("<ResponseStatus><statusCode>4</statusCode></ResponseStatus>", status_code=400, media_type="application/xml")
        self._open()
        return Response(OK_XML, media_type="application/xml")

    def _open(self) -> None:
        self.opens.append(time.monotonic())
        self.door_unlocked_until = time.monotonic() + self.door_open_s  # the terminal relocks by itself

    async def _remote_check(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        check = (await request.json()).get("RemoteCheck") or {}
        waiting = self._waiting.get(int(check.get("serialNo", -1)))
        if waiting is None or waiting.done() or check.get("checkResult") not in ("success", "failed"):
            return JSONResponse({"statusCode": 4, "statusString": "Invalid Operation", "subStatusCode": "notSupport"}, status_code=400)
        waiting.set_result(Verdict(int(check["serialNo"]), check["checkResult"], check.get("info")))
        return JSONResponse(OK_JSON)

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

    # --- people and faces ----------------------------------------------------------------------

    async def _user_search(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        cond = (await request.json()).get("UserInfoSearchCond", {})
        everyone = sorted(self.people.values(), key=lambda p: p["employeeNo"])
        position, limit = int(cond.get("searchResultPosition", 0)), int(cond.get("maxResults", 30))
        page = everyone[position : position + limit]
        status = "MORE" if position + limit < len(everyone) else ("OK" if page else "NO MATCH")
        return JSONResponse({"UserInfoSearch": {"searchID": cond.get("searchID"), "responseStatusStrg": status, "numOfMatches": len(page), "totalMatches": len(everyone), "UserInfo": page}})

    async def _user_record(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        user = (await request.json()).get("UserInfo") or {}
        if user.get("employeeNo") in self.people:  # adding someone already there is an error (§9.16.2.4)
            return JSONResponse({"statusCode": 6, "statusString": "Invalid Content", "subStatusCode": "employeeNoAlreadyExist"}, status_code=400)
        self.people[user["employeeNo"]] = user
        return JSONResponse(OK_JSON)

    async def _user_modify(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        user = (await request.json()).get("UserInfo") or {}
        if user.get("employeeNo") not in self.people:  # editing someone absent is an error (§9.16.2.5)
            return JSONResponse({"statusCode": 6, "statusString": "Invalid Content", "subStatusCode": "employeeNoNotExist"}, status_code=400)
        self.people[user["employeeNo"]] = user
        return JSONResponse(OK_JSON)

    async def _user_delete(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        detail = (await request.json()).get("UserInfoDetail") or {}
        gone = list(self.people) if detail.get("mode") == "all" else [e.get("employeeNo") for e in detail.get("EmployeeNoList") or []]
        for employee_no in gone:
            self.people.pop(employee_no, None)
            self.faces.discard(employee_no)  # "the credentials linked via the person ID will also be deleted"
        return JSONResponse(OK_JSON)

    async def _face_delete(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        for fpid in (await request.json()).get("FPID") or []:
            self.faces.discard(fpid.get("value"))
        return JSONResponse(OK_JSON)

    def enrol_face(self, employee_no: str) -> None:
        """The person stands at the terminal to enrol: only someone on its list can have a face."""
        if employee_no in self.people:
            self.faces.add(employee_no)

    def _recognises(self, employee_no: str) -> bool:
        person = self.people.get(employee_no)
        if person is None or employee_no not in self.faces:
            return False
        valid = person.get("Valid") or {}
        now = self.now().replace(tzinfo=None)
        try:
            return datetime.fromisoformat(valid["beginTime"]) <= now <= datetime.fromisoformat(valid["endTime"])
        except (KeyError, ValueError):
            return False

    # --- the event stream ----------------------------------------------------------------------

    async def _alert_stream(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._streams.append(queue)

        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    try:
                        async with asyncio.timeout(self.heartbeat_s):
                            part = await queue.get()
                    except TimeoutError:
                        part = self._part({"eventType": "heartBeat", "dateTime": self.now().isoformat(), "eventState": "active"})
                    if not part:
                        return
                    yield part
            finally:
                self._streams.remove(queue)

        return StreamingResponse(body(), media_type=f"multipart/mixed; boundary={STREAM_BOUNDARY}")

    @staticmethod
    def _part(event: dict[str, Any]) -> bytes:
        payload = json.dumps(event).encode()
        return (f"--{STREAM_BOUNDARY}\r\nContent-Type: application/json; charset=\"UTF-8\"\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload + b"\r\n"

    # --- what happens at the gate --------------------------------------------------------------

    def now(self) -> datetime:
        """The terminal's own clock, in China time as a real terminal reports it."""
        return (datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)).astimezone(CHINA)

    def reboot(self) -> None:
        """Power cycled or factory reset: the event log starts again from serial 1 (here 101)."""
        self.serial = 100
        self.events.clear()

    async def _deliver(self, event: dict[str, Any], deliver: bool) -> None:
        if not deliver:
            return  # lost on the way: the bridge must recover it by serialNo
        if self._streams:
            for queue in self._streams:
                queue.put_nowait(self._part(event))
            return
        async with httpx.AsyncClient(timeout=5) as client:
            with contextlib.suppress(httpx.HTTPError):
                await client.post(self.bridge_url, json=event)

    async def _event(self, ace: dict[str, Any], deliver: bool, at: datetime | None) -> dict[str, Any]:
        self.serial += 1
        ace = {"majorEventType": 5, "serialNo": self.serial, "currentEvent": True, "pictureURL": f"{self.base_url}/pic/{self.serial}.jpg"} | ace
        event = {"eventType": "AccessControllerEvent", "dateTime": (at or self.now()).isoformat(), "AccessControllerEvent": ace}
        self.events.append(event)
        await self._deliver(event, deliver)
        return event

    async def _await_verdict(self, serial: int) -> Verdict:
        waiting = self._waiting[serial] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self.remote_check_timeout_s):
                verdict = await waiting
        except TimeoutError:
            verdict = Verdict(serial, "timeout", None)  # remoteCheckTimeout: "the verification fails"
        finally:
            self._waiting.pop(serial, None)
        self.verdicts.append(verdict)
        if verdict.result == "success":
            self._open()
        return verdict

    async def access(self, qr: str | None = None, temperature: float | None = None, abnormal: bool = False, unit: str = "celsius",
                     deliver: bool = True, at: datetime | None = None) -> dict[str, Any]:
        """A person at the terminal: a QR scan and/or a temperature reading, as one numbered event.
        With remote verification a scan waits for the verdict (read it from ``verdicts``)."""
        ace: dict[str, Any] = {"subEventType": 0}
        if qr is not None:
            ace |= {"QRCodeInfo": qr, "subEventType": 0x4B if not self.remote_check else 0}
        if temperature is not None:
            ace |= {"currTemperature": temperature, "isAbnomalTemperature": abnormal, "thermometryUnit": unit, "thermometryResult": "success"}
        asks = self.remote_check and qr is not None and deliver
        if asks:
            ace["remoteCheck"] = True
            waiting = asyncio.get_running_loop().create_task(self._await_verdict(self.serial + 1))
        event = await self._event(ace, deliver, at)
        if asks:
            await waiting
        return event

    async def face(self, employee_no: str, temperature: float | None = None, abnormal: bool = False) -> dict[str, Any]:
        """A face in front of the camera. Without a match in its own library the terminal refuses
        (minor 0x4c). With a match it decides alone (minor 0x4b, door opened) or, with remote
        verification, asks the bridge about that person and waits."""
        known = self._recognises(employee_no)
        ace: dict[str, Any] = {"subEventType": FACE_PASS if known else FACE_FAIL, "currentVerifyMode": "face"}
        if known:
            ace["employeeNoString"] = employee_no
        if temperature is not None:
            ace |= {"currTemperature": temperature, "isAbnomalTemperature": abnormal, "thermometryUnit": "celsius", "thermometryResult": "success"}
        if known and self.remote_check:
            ace["remoteCheck"] = True
            waiting = asyncio.get_running_loop().create_task(self._await_verdict(self.serial + 1))
            event = await self._event(ace, True, None)
            await waiting
            return event
        if known:
            self._open()
        return await self._event(ace, True, None)

    async def plate(self, plate: str, confidence: int = 95, deliver: bool = True, xml: bool = False) -> dict[str, Any]:
        """The lane's ANPR camera read a plate: JSON, or (``xml``) the ``EventNotificationAlert`` XML with the
        plate picture, as a multipart post whose XML part is named ``ANPR.xml`` (§5.1.2.3)."""
        event = {"eventType": "ANPR", "dateTime": self.now().isoformat(), "ANPR": {"licensePlate": plate, "confidenceLevel": confidence}}
        if not deliver:
            return event
        if not xml:
            await self._deliver(event, True)
            return event
        document = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
            f"<ipAddress>10.0.0.21</ipAddress><portNo>80</portNo><protocol>HTTP</protocol><channelID>1</channelID>"
            f"<dateTime>{event['dateTime']}</dateTime><activePostCount>1</activePostCount><eventType>ANPR</eventType>"
            f"<eventState>active</eventState><eventDescription>ANPR</eventDescription>"
            f"<ANPR><country>3</country><licensePlate>{plate}</licensePlate><line>1</line><direction>forward</direction>"
            f"<confidenceLevel>{confidence}</confidenceLevel><plateType>92TypeCivil</plateType><plateColor>blue</plateColor>"
            f"<pictureInfoList><pictureInfo><fileName>{'2' * 40}</fileName><type>licensePlatePicture</type></pictureInfo></pictureInfoList>"
            "</ANPR></EventNotificationAlert>"
        )
        async with httpx.AsyncClient(timeout=5) as client:
            with contextlib.suppress(httpx.HTTPError):
                await client.post(self.bridge_url, files={
                    "ANPR.xml": ("ANPR.xml", document.encode(), "application/xml"),
                    "licensePlatePicture.jpg": ("licensePlatePicture.jpg", b"\xff\xd8\xff\xe0 plate picture", "image/jpeg"),
                })
        return event
