"""Minimal Nuki- and Tasmota-style devices for the MQTT profiles (their real topics and payloads).

- Tasmota relay: ``cmnd/<t>/Backlog "PulseTime1 <100+s>;Power1 ON"`` -> ``stat/<t>/POWER1 ON``, and
  ``OFF`` when PulseTime ends; ``tele/<t>/LWT`` Online/Offline (retained).
- Nuki lock: ``<n>/lockAction 3`` (unlatch) -> ``<n>/commandResponse 0`` -> ``<n>/state`` 5 (unlatched)
  then 1 (locked); ``<n>/connected`` true/false (retained); ``<n>/doorsensorState`` 2 closed / 3 open.
"""

from __future__ import annotations

import asyncio
import re

import aiomqtt


class VendorSim:
    def __init__(self, kind: str, topic: str, host: str = "127.0.0.1", port: int = 1883) -> None:
        if kind not in ("tasmota", "nuki"):
            raise ValueError(kind)
        self.kind, self.topic, self.host, self.port = kind, topic, host, port
        self.commands: list[str] = []
        self.unlocks = 0
        self.locked = True
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None

    def _will(self) -> aiomqtt.Will:
        if self.kind == "tasmota":
            return aiomqtt.Will(f"tele/{self.topic}/LWT", "Offline", qos=1, retain=True)
        return aiomqtt.Will(f"{self.topic}/connected", "false", qos=1, retain=True)

    async def run(self) -> None:
        command_topic = f"cmnd/{self.topic}/Backlog" if self.kind == "tasmota" else f"{self.topic}/lockAction"
        async with aiomqtt.Client(self.host, self.port, will=self._will(), timeout=3) as client:
            self._client = client
            await client.subscribe(command_topic, qos=1)
            if self.kind == "tasmota":
                await client.publish(f"tele/{self.topic}/LWT", "Online", qos=1, retain=True)
            else:
                await client.publish(f"{self.topic}/connected", "true", qos=1, retain=True)
                await client.publish(f"{self.topic}/state", "1", qos=1, retain=True)
            self.connected.set()
            async for message in client.messages:
                await self._command(str(message.payload.decode() if isinstance(message.payload, bytes) else message.payload))

    async def _command(self, text: str) -> None:
        assert self._client is not None
        self.commands.append(text)
        if self.kind == "tasmota":
            pulse = re.search(r"PulseTime1 (\d+)", text)
            if not pulse or "Power1 ON" not in text:
                return
            value = int(pulse.group(1))
            seconds = value / 10 if value <= 111 else value - 100
            await self._client.publish(f"stat/{self.topic}/POWER1", "ON", qos=1)
            self.unlocks += 1
            await asyncio.sleep(seconds)
            await self._client.publish(f"stat/{self.topic}/POWER1", "OFF", qos=1)
            return
        if text.strip() != "3":
            await self._client.publish(f"{self.topic}/commandResponse", "1", qos=1)  # only unlatch is accepted here
            return
        await self._client.publish(f"{self.topic}/commandResponse", "0", qos=1)
        self.unlocks += 1
        await self._client.publish(f"{self.topic}/state", "5", qos=1, retain=True)
        await asyncio.sleep(1.0)  # the latch springs back by itself
        await self._client.publish(f"{self.topic}/state", "1", qos=1, retain=True)

    async def door(self, open_: bool) -> None:
        assert self._client is not None and self.kind == "nuki"
        await self._client.publish(f"{self.topic}/doorsensorState", "3" if open_ else "2", qos=1, retain=True)
