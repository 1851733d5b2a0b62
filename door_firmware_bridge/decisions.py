"""Who decides: the service when it answers, else the verified offline cache; lanes combine evidence.

Fallback happens only when the service cannot be reached (connection error, timeout, 5xx). An answer
from the service, allow or deny (401/403/4xx included), is final: a device key the service refuses
must not turn into offline admissions. After a failure the service is skipped for ``RETRY_S`` so
that, during an outage, each scan does not first wait out a connect timeout.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from door_firmware_bridge.config import DoorConfig, Lane, ServiceConfig
from door_firmware_bridge.model import Decision, Presented, new_id
from door_firmware_bridge.offline import OfflineCache
from idsvc.core.validation import normalise_plate

RETRY_S = 5.0


class ServiceUnreachable(Exception):
    """The service did not answer (or answered 5xx): the caller may decide offline."""


class OnlineDecider:
    def __init__(self, cfg: ServiceConfig, client: httpx.AsyncClient | None = None) -> None:
        self._down_until = float("-inf")  # monotonic: skip the service until then
        self._client = client or httpx.AsyncClient(
            base_url=cfg.url,
            headers={"Authorization": f"Bearer {cfg.key()}"},
            timeout=httpx.Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, 1.0)),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def reachable(self) -> bool:
        return time.monotonic() >= self._down_until

    async def _post(self, credential: str, path: str, **kwargs: Any) -> Decision:
        if not self.reachable:
            raise ServiceUnreachable("service failed recently; retrying later")
        try:
            answer = await self._client.post(path, **kwargs)
            if answer.status_code >= 500:
                raise ServiceUnreachable(f"service answered {answer.status_code}")
            body = answer.json()
        except (httpx.HTTPError, ValueError, ServiceUnreachable) as exc:
            self._down_until = time.monotonic() + RETRY_S
            raise ServiceUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code != 200:
            code = body.get("error", {}).get("code", str(answer.status_code)) if isinstance(body, dict) else str(answer.status_code)
            return Decision.deny("online", credential, f"service_refused:{code}")
        listed = body.get("reasons") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(listed or [], list) or not all(isinstance(r, str) for r in listed or []):
            return Decision.deny("online", credential, "service_answer_unclear")  # not the documented answer shape
        reasons = tuple(sorted(set(listed or [])))
        allow = body.get("allow") is True and not reasons  # default deny: anything unclear is a no
        return Decision(allow, reasons if allow or reasons else ("service_answer_unclear",), "online", credential,
                        decision_id=body.get("decision_id") or new_id(),
                        person_id=body.get("person_id"), versions=body.get("versions") or {})

    async def qr(self, door: DoorConfig, text: str) -> Decision:
        return await self._post("qr", "/v1/device/verify", json={"door_id": door.door_id, "qr_text": text})

    async def plate(self, door: DoorConfig, plate: str) -> Decision:
        return await self._post("plate", "/v1/device/plate-verify", json={"door_id": door.door_id, "plate": plate})

    async def face(self, door: DoorConfig, jpeg: bytes) -> Decision:
        return await self._post("face", "/v1/device/face-verify", data={"door_id": str(door.door_id)}, files={"image": ("frame.jpg", jpeg, "image/jpeg")})


@dataclass
class _PlateSeen:
    plate: str
    mono: float


class Decider:
    def __init__(self, online: OnlineDecider, offline: OfflineCache | None) -> None:
        self.online = online
        self.offline = offline
        self._plates: dict[str, _PlateSeen] = {}  # lane -> last plate read there

    async def _qr(self, door: DoorConfig, text: str, presented: Presented) -> Decision:
        try:
            return await self.online.qr(door, text)
        except ServiceUnreachable:
            if self.offline is None:
                return Decision.deny("offline", "qr", "service_unreachable", "offline_disabled")
            return self.offline.decide_qr(door, text, presented.received_at)

    async def _plate(self, door: DoorConfig, plate: str, presented: Presented) -> Decision:
        try:
            return await self.online.plate(door, plate)
        except ServiceUnreachable:
            if self.offline is None:
                return Decision.deny("offline", "plate", "service_unreachable", "offline_disabled")
            return self.offline.decide_plate(door, plate, presented.received_at)

    def _identified(self, door: DoorConfig, employee_no: str, presented: Presented) -> Decision:
        """A person the terminal identified itself (remote verification): decided from the verified feed,
        as there is no service call that takes a terminal's identification."""
        if self.offline is None:
            return Decision.deny("offline", "terminal", "offline_disabled")
        return self.offline.decide_subject(door, employee_no, presented.received_at)

    async def decide(self, door: DoorConfig, presented: Presented) -> Decision | None:
        """The decision for this presentation, or None when it only prepares one (a plate on a plate+pass lane)."""
        plate, refusal = _usable_plate(door, presented)
        if door.lane is Lane.plate_only:
            if presented.plate is None:
                return Decision.deny("bridge", presented_kind(presented), "lane_needs_plate")
            return await self._plate(door, plate, presented) if plate else Decision.deny("bridge", "plate", str(refusal))
        if door.lane is Lane.plate_and_pass:
            if presented.plate is not None and presented.qr is None:
                if plate:
                    self._plates[door.name] = _PlateSeen(plate, presented.mono)
                return None  # wait for the pass; a refused read simply leaves no plate for it
            seen = self._plates.pop(door.name, None)
            if presented.qr is None:
                return Decision.deny("bridge", presented_kind(presented), "lane_needs_pass")
            if seen is None or presented.mono - seen.mono > door.plate_window_s:
                return Decision.deny("bridge", "plate+qr", "plate_missing")
            by_pass = await self._qr(door, presented.qr, presented)
            by_plate = await self._plate(door, seen.plate, presented)
            reasons = tuple(sorted(set(by_pass.reasons) | {f"plate:{r}" for r in by_plate.reasons}))
            allow = by_pass.allow and by_plate.allow
            versions = by_pass.versions | {"plate_decision_id": by_plate.decision_id, "plate": seen.plate}
            return Decision(allow, reasons, by_pass.source, "plate+qr", by_pass.decision_id, by_pass.person_id, versions)
        if presented.qr is not None:
            return await self._qr(door, presented.qr, presented)
        if presented.remote_check is not None and presented.remote_check.identified_as:
            return self._identified(door, presented.remote_check.identified_as, presented)
        if presented.face_jpeg is not None:
            try:
                return await self.online.face(door, presented.face_jpeg)
            except ServiceUnreachable:
                if self.offline is None:
                    return Decision.deny("offline", "face", "service_unreachable", "offline_disabled")
                return await asyncio.to_thread(self.offline.decide_face, door, presented.face_jpeg, presented.received_at)
        return Decision.deny("bridge", presented_kind(presented), "no_credential")


def presented_kind(presented: Presented) -> str:
    if presented.qr is not None:
        return "qr"
    if presented.plate is not None:
        return "plate"
    if presented.face_jpeg:
        return "face"
    return "terminal" if presented.remote_check is not None and presented.remote_check.identified_as else "none"


def _usable_plate(door: DoorConfig, presented: Presented) -> tuple[str | None, str | None]:
    """(normalised plate, None), or (None, why the read cannot be trusted)."""
    if presented.plate is None:
        return None, "plate_missing"
    if presented.plate_confidence is not None and presented.plate_confidence < door.plate_min_confidence:
        return None, "plate_low_confidence"
    try:
        return normalise_plate(presented.plate), None
    except ValueError:
        return None, "plate_unreadable"
