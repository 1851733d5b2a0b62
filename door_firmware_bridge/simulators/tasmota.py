"""A Tasmota relay as its documentation describes it (tasmota/docs: Commands.md, MQTT.md).

Written from those pages, not from the bridge's profile: commands on ``cmnd/<topic>/<Command>``
(case-insensitive, ``Backlog`` splits on ``;``), results on ``stat/<topic>/RESULT`` as JSON and the
power state also on ``stat/<topic>/POWER<n>`` (``POWER`` on a one-relay device, unless SetOption26),
``tele/<topic>/LWT`` ``Online`` retained with ``Offline`` as last will. ``PulseTime<n>`` is kept
like a flash setting across connections: 0 disables it, 1..111 are tenths of a second, 112..64900
are the value minus 100 in seconds; with it set, ``Power ON`` switches off again by itself (and a
new ``Power ON`` restarts it). ``PulseTime<n>`` without a value reports ``{"PulseTime<n>":{"Set":v,"Remaining":r}}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiomqtt


def pulse_seconds(value: int) -> float:
    return value / 10 if value <= 111 else float(value - 100)


@dataclass
class TasmotaSim:
    topic: str
    host: str = "127.0.0.1"
    port: int = 1883
    relays: int = 1
    pulse_time: dict[int, int] = field(default_factory=dict)  # relay -> PulseTime setting (flash)
    power: dict[int, bool] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)  # "<Command> <payload>" as received
    switched_on: list[float] = field(default_factory=list)  # monotonic times the relay went ON
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _client: aiomqtt.Client | None = None
    _timers: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    _pulse_end: dict[int, float] = field(default_factory=dict)

    async def run(self) -> None:
        will = aiomqtt.Will(f"tele/{self.topic}/LWT", "Offline", qos=1, retain=True)
        async with aiomqtt.Client(self.host, self.port, will=will, timeout=3) as client:
            self._client = client
            await client.subscribe(f"cmnd/{self.topic}/#", qos=1)
            await client.publish(f"tele/{self.topic}/LWT", "Online", qos=1, retain=True)
            self.connected.set()
            async for message in client.messages:
                command = str(message.topic).rsplit("/", 1)[-1]
                payload = message.payload.decode() if isinstance(message.payload, bytes) else str(message.payload or "")
                for part in ([p.strip() for p in payload.split(";")] if command.lower() == "backlog" else [f"{command} {payload}".strip()]):
                    name, _, value = part.partition(" ")
                    await self._command(name, value.strip())

    def _power_key(self, relay: int) -> str:
        return "POWER" if self.relays == 1 else f"POWER{relay}"  # SetOption26 off: no index on a one-relay device

    async def _command(self, name: str, value: str) -> None:
        assert self._client is not None
        self.commands.append(f"{name} {value}".strip())
        lower = name.lower()
        base, index = lower.rstrip("0123456789"), lower[len(lower.rstrip("0123456789")):]
        relay = int(index) if index else 1
        if base == "power" and 1 <= relay <= self.relays:
            await self._power(relay, value.lower())
        elif base == "pulsetime" and 1 <= relay <= 32:
            if value:
                self.pulse_time[relay] = int(value)
            remaining = max(0.0, self._pulse_end.get(relay, 0.0) - time.monotonic())
            answer = {f"PulseTime{relay}": {"Set": self.pulse_time.get(relay, 0), "Remaining": round(remaining * 10)}}
            await self._client.publish(f"stat/{self.topic}/RESULT", json.dumps(answer), qos=1)
        else:
            await self._client.publish(f"stat/{self.topic}/RESULT", json.dumps({"Command": "Unknown"}), qos=1)

    async def _power(self, relay: int, value: str) -> None:
        current = self.power.get(relay, False)
        if value in ("", ):
            await self._report(relay)
            return
        wanted = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False, "toggle": not current, "2": not current}.get(value)
        if wanted is None:
            return
        await self._switch(relay, wanted)
        if wanted and self.pulse_time.get(relay):  # Power ON (re)starts PulseTime
            if relay in self._timers:
                self._timers[relay].cancel()
            seconds = pulse_seconds(self.pulse_time[relay])
            self._pulse_end[relay] = time.monotonic() + seconds
            self._timers[relay] = asyncio.get_running_loop().create_task(self._pulse_off(relay, seconds))

    async def _switch(self, relay: int, on: bool) -> None:
        self.power[relay] = on
        if on:
            self.switched_on.append(time.monotonic())
        await self._report(relay)

    async def _report(self, relay: int) -> None:
        assert self._client is not None
        key, state = self._power_key(relay), "ON" if self.power.get(relay) else "OFF"
        await self._client.publish(f"stat/{self.topic}/RESULT", json.dumps({key: state}), qos=1)
        await self._client.publish(f"stat/{self.topic}/{key}", state, qos=1)

    async def _pulse_off(self, relay: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._switch(relay, False)
