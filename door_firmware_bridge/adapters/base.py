"""The one small interface every adapter implements: events in, commands out, health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Command, DeviceEvent

Sink = Callable[[DeviceEvent], Awaitable[None]]


class Adapter(Protocol):
    doors: list[DoorConfig]

    async def run(self, sink: Sink) -> None:
        """Run until cancelled: connect (and reconnect), turn device traffic into events for ``sink``."""

    async def send(self, door: DoorConfig, cmd: Command) -> None:
        """Hand one pulse command to the device or raise supervisor.DeviceUnavailable; never queue it."""

    def health(self) -> dict[str, Any]:
        """Connection and device reachability, for `door-bridge status`."""
