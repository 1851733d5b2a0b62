"""A Zigbee lock and a door contact sensor as Zigbee2MQTT publishes them.

Written from Zigbee2MQTT's documentation ("MQTT Topics and Messages", "Device-Availability") and the
device definitions in Koenkk/zigbee-herdsman-converters (``src/lib/exposes.ts``: ``lock()`` =
``state`` LOCK/UNLOCK + ``lock_state`` not_fully_locked/locked/unlocked; ``contact``: true = closed;
``battery``, ``tamper``, ``linkquality``), not from the bridge's profile. The state is one flat JSON
object on ``zigbee2mqtt/<friendly name>``; commands on ``.../set`` (``{"state": "UNLOCK"}``); the
availability is retained on ``.../availability`` as ``{"state": "online"}`` (2.x) or plain
``online`` (``legacy=True``). A Zigbee lock stays unlocked until told to lock, unless its
``auto_relock_time`` attribute is set.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiomqtt


@dataclass
class ZigbeeLockSim:
    name: str  # friendly name of the lock
    sensor: str = ""  # friendly name of the door contact sensor, if any
    host: str = "127.0.0.1"
    port: int = 1883
    base: str = "zigbee2mqtt"
    legacy: bool = False  # Zigbee2MQTT 1.x plain-text availability
    auto_relock_time: int = 0  # seconds; 0 = disabled
    jam_on_lock: bool = False  # the bolt does not go fully out
    motor_s: float = 0.2
    lock_state: str = "locked"
    contact: bool = True
    battery: int = 87
    sets: list[dict[str, Any]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _client: aiomqtt.Client | None = None
    _relock: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with aiomqtt.Client(self.host, self.port, timeout=3) as client:
            self._client = client
            await client.subscribe(f"{self.base}/{self.name}/set", qos=1)
            for device in (self.name, self.sensor):
                if device:
                    await self._availability(device, "online")
            await self._publish_lock()
            if self.sensor:
                await self._publish_sensor()
            self.connected.set()
            async for message in client.messages:
                try:
                    body = json.loads(message.payload)  # type: ignore[arg-type]
                except ValueError:
                    continue
                if isinstance(body, dict):
                    asyncio.get_running_loop().create_task(self._set(body))

    async def _availability(self, device: str, state: str) -> None:
        assert self._client is not None
        payload = state if self.legacy else json.dumps({"state": state})
        await self._client.publish(f"{self.base}/{device}/availability", payload, qos=1, retain=True)

    async def _publish_lock(self) -> None:
        assert self._client is not None
        body = {"state": "LOCK" if self.lock_state == "locked" else "UNLOCK", "lock_state": self.lock_state,
                "battery": self.battery, "auto_relock_time": self.auto_relock_time, "linkquality": 120}
        await self._client.publish(f"{self.base}/{self.name}", json.dumps(body), qos=1)

    async def _publish_sensor(self) -> None:
        assert self._client is not None
        body = {"contact": self.contact, "battery": 100, "tamper": False, "battery_low": False, "linkquality": 96}
        await self._client.publish(f"{self.base}/{self.sensor}", json.dumps(body), qos=1)

    async def _set(self, body: dict[str, Any]) -> None:
        self.sets.append(body)
        state = body.get("state")
        state = state.get("state") if isinstance(state, dict) else state  # {"state": {"state": "UNLOCK", "code": ...}}
        if not isinstance(state, str) or state.upper() not in ("LOCK", "UNLOCK", "TOGGLE"):
            return
        wanted = state.upper()
        if wanted == "TOGGLE":
            wanted = "LOCK" if self.lock_state != "locked" else "UNLOCK"
        await asyncio.sleep(self.motor_s)
        if wanted == "UNLOCK":
            self.lock_state = "unlocked"
            if self.auto_relock_time:
                self._arm_relock()
        else:
            self.lock_state = "not_fully_locked" if self.jam_on_lock else "locked"
        await self._publish_lock()

    def _arm_relock(self) -> None:
        if self._relock is not None:
            self._relock.cancel()

        async def relock() -> None:
            await asyncio.sleep(self.auto_relock_time)
            self.lock_state = "locked"
            await self._publish_lock()

        self._relock = asyncio.get_running_loop().create_task(relock())

    # --- what happens at the door --------------------------------------------------------------

    async def open_door(self) -> None:
        self.contact = False
        await self._publish_sensor()

    async def close_door(self) -> None:
        self.contact = True
        await self._publish_sensor()

    async def report_battery(self, percent: int) -> None:
        self.battery = percent
        await self._publish_lock()
