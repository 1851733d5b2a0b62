"""The schema of docs/bridge.md: cmd/ack/state/availability/scan under ``acs/v1/{site}/{door}``."""

from __future__ import annotations

import base64
import binascii
import json

from door_firmware_bridge.adapters.profiles.base import Publish, json_object
from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Availability, Command, CommandResult, DeviceEvent, DoorState, Presented, Recorded


def base_topic(site: str, door: str) -> str:
    return f"acs/v1/{site}/{door}"


class AcsProfile:
    relocks_itself = True  # the lock times its pulse and relocks itself

    def __init__(self, site: str, door: DoorConfig) -> None:
        self.door = door
        self.base = base_topic(site, door.name)

    def topics(self) -> list[str]:
        return [f"{self.base}/{suffix}" for suffix in ("ack", "state", "availability", "scan")]

    def on_connect(self) -> list[Publish]:
        return []

    def not_ready(self) -> str | None:
        return None

    def command(self, cmd: Command) -> Publish:
        return Publish(f"{self.base}/cmd", json.dumps(cmd.to_wire(self.door.command_key)))

    def parse(self, topic: str, payload: bytes) -> list[DeviceEvent | Publish]:
        name, what = self.door.name, topic.rsplit("/", 1)[-1]
        if what == "ack":
            data = json_object(payload)
            if data is None or not isinstance(data.get("cmd_id"), str) or not isinstance(data.get("status"), str):
                return [Recorded(name, "device_message_invalid", {"topic": topic})]
            return [CommandResult(name, data["cmd_id"], data["status"], data.get("lock_state"), bool(data.get("duplicate")))]
        if what == "state":
            data = json_object(payload) or {}
            battery, tamper = data.get("battery"), data.get("tamper")
            return [DoorState(name, data.get("lock"), data.get("door"), battery if isinstance(battery, int) else None, tamper if isinstance(tamper, bool) else None)]
        if what == "availability":
            return [Availability(name, payload.strip() == b"online")]
        return self._scan(payload, topic)

    def _scan(self, payload: bytes, topic: str) -> list[DeviceEvent | Publish]:
        data = json_object(payload)
        face, qr = (data or {}).get("face_jpeg_b64"), (data or {}).get("qr")
        try:
            jpeg = base64.b64decode(face, validate=True) if isinstance(face, str) else None
        except binascii.Error:
            data = None
        if data is None:
            return [Recorded(self.door.name, "device_message_invalid", {"topic": topic})]
        return [Presented(self.door.name, source=f"mqtt:{self.door.name}", qr=qr if isinstance(qr, str) else None, face_jpeg=jpeg)]
