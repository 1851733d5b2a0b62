"""Simulated Zigbee2MQTT and Tasmota sensors, written from the projects' published topic and payload
formats (not from the ingest): for tests, benchmarks and ``door-bridge sensors simulate-zigbee``.

Zigbee2MQTT publishes a device's whole state as one JSON object on ``<base>/<friendly_name>``
(retained only if the user configured it) and its availability, retained, on
``<base>/<friendly_name>/availability`` (``{"state":"online"}``; ``online`` in the legacy format).
Tasmota publishes ``tele/<topic>/SENSOR`` every TelePeriod and a retained ``tele/<topic>/LWT``
(``Online``, and ``Offline`` as its last will).
"""

from __future__ import annotations

import json
from typing import Any

import aiomqtt


class ZigbeeSensorSim:
    def __init__(self, name: str, base: str = "zigbee2mqtt", host: str = "127.0.0.1", port: int = 1883, *, legacy: bool = False) -> None:
        self.topic = f"{base}/{name}"
        self.host, self.port = host, port
        self.legacy = legacy  # old Zigbee2MQTT: numbers as strings, plain-word availability
        self.state: dict[str, Any] = {"battery": 97, "linkquality": 120, "battery_low": False, "tamper": False}
        self._client: aiomqtt.Client | None = None

    async def __aenter__(self) -> ZigbeeSensorSim:
        self._client = aiomqtt.Client(self.host, self.port, identifier=f"z2m-sim-{self.topic.replace('/', '-')}"[:64])
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    async def report(self, **changes: Any) -> dict[str, Any]:
        """Publish the device's state after ``changes`` (Zigbee2MQTT sends the whole state each time)."""
        assert self._client is not None, "use 'async with'"
        self.state.update(changes)
        payload = {k: (str(v) if self.legacy and isinstance(v, int | float) and not isinstance(v, bool) else v) for k, v in self.state.items()}
        await self._client.publish(self.topic, json.dumps(payload), qos=1)
        return payload

    async def availability(self, online: bool) -> None:
        assert self._client is not None, "use 'async with'"
        word = "online" if online else "offline"
        await self._client.publish(f"{self.topic}/availability", word if self.legacy else json.dumps({"state": word}), qos=1, retain=True)


class TasmotaSensorSim:
    def __init__(self, topic: str, prefix: str = "tele", host: str = "127.0.0.1", port: int = 1883) -> None:
        self.base = f"{prefix}/{topic}"
        self.host, self.port = host, port
        self._client: aiomqtt.Client | None = None

    async def __aenter__(self) -> TasmotaSensorSim:
        will = aiomqtt.Will(f"{self.base}/LWT", "Offline", qos=1, retain=True)
        self._client = aiomqtt.Client(self.host, self.port, identifier=f"tasmota-sim-{self.base.replace('/', '-')}"[:64], will=will)
        await self._client.__aenter__()
        await self._client.publish(f"{self.base}/LWT", "Online", qos=1, retain=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.publish(f"{self.base}/LWT", "Offline", qos=1, retain=True)
            await self._client.__aexit__(None, None, None)
            self._client = None

    async def sensor(self, sensors: dict[str, Any], time: str = "2026-12-01T12:00:00") -> None:
        """``tele/<topic>/SENSOR``: ``{"Time": ..., "<SensorName>": {...}, ...}``."""
        assert self._client is not None, "use 'async with'"
        await self._client.publish(f"{self.base}/SENSOR", json.dumps({"Time": time, **sensors}), qos=1)
