"""What every MQTT device profile provides to the adapter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Command, DeviceEvent


@dataclass(frozen=True)
class Publish:
    """A message the profile needs sent (a command, or a query such as Tasmota's PulseTime)."""

    topic: str
    payload: str
    qos: int = 1


class DeviceProfile(Protocol):
    door: DoorConfig
    relocks_itself: bool  # the device ends the pulse itself; otherwise the supervisor sends a lock

    def topics(self) -> list[str]:
        """What to subscribe to for this door."""

    def on_connect(self) -> list[Publish]:
        """Messages to send once subscribed (queries of the device's configuration)."""

    def parse(self, topic: str, payload: bytes) -> list[DeviceEvent | Publish]:
        """The bridge events in one device message (and any message to send in reply)."""

    def command(self, cmd: Command) -> Publish:
        """The device's message for a pulse or a lock command."""

    def not_ready(self) -> str | None:
        """Why no command may go to the device now (e.g. its relay timing is unverified), or None."""


def json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
