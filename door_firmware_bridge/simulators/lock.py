"""A smart lock on MQTT speaking the acs schema of docs/bridge.md, with the faults real locks have.

It relocks by itself (the pulse is timed here, on the "device", so a dead bridge cannot hold a door
open), refuses expired commands, answers a repeated cmd_id with its first result and never runs it
twice, and can be told to jam, answer slowly, answer twice, or not at all. Door contact and battery
are driven by the test or demo (:meth:`LockSim.open_door`, :meth:`LockSim.set_battery`).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from door_firmware_bridge.adapters.profiles.acs import base_topic
from door_firmware_bridge.model import command_mac


@dataclass
class Faults:
    ack_delay_s: float = 0.0
    duplicate_acks: bool = False
    jammed: bool = False
    silent: bool = False  # executes but never answers (lost ack)
    ignore: bool = False  # neither executes nor answers (dead firmware)


@dataclass
class Received:
    payload: dict[str, Any]
    expiry: int | None
    retained: bool
    at: float  # monotonic, for scan-to-unlock figures


class LockSim:
    def __init__(self, site: str, door: str, host: str = "127.0.0.1", port: int = 1883, faults: Faults | None = None, key: bytes | None = None) -> None:
        self.key = key  # with a key, only commands with a valid hmac are run
        self.base = base_topic(site, door)
        self.host, self.port = host, port
        self.faults = faults or Faults()
        self.lock = "locked"
        self.contact = "closed"
        self.battery = 90
        self.seq = 0
        self.received: list[Received] = []
        self.scans: list[float] = []  # monotonic times of scan()
        self.executed: list[str] = []
        self.results: dict[str, str] = {}  # cmd_id -> first status (idempotency)
        self.unlock_count = 0
        self._client: aiomqtt.Client | None = None
        self._relock: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.history: list[str] = ["locked"]

    async def run(self) -> None:
        """Connect (and reconnect) until cancelled."""
        while True:
            will = aiomqtt.Will(f"{self.base}/availability", "offline", qos=1, retain=True)
            try:
                async with aiomqtt.Client(self.host, self.port, protocol=aiomqtt.ProtocolVersion.V5, will=will, keepalive=10, timeout=3) as client:
                    self._client = client
                    await client.subscribe(f"{self.base}/cmd", qos=1)
                    await client.publish(f"{self.base}/availability", "online", qos=1, retain=True)
                    await self._publish_state()
                    self.connected.set()
                    async for message in client.messages:
                        await self._command(message)
            except aiomqtt.MqttError:
                pass
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(0.2)

    async def _publish(self, suffix: str, body: Any, retain: bool = False) -> None:
        if self._client is not None:
            payload = body if isinstance(body, str) else json.dumps(body)
            try:
                await self._client.publish(f"{self.base}/{suffix}", payload, qos=1, retain=retain, timeout=2)
            except aiomqtt.MqttError:
                pass

    async def _publish_state(self) -> None:
        self.seq += 1
        state = {"lock": self.lock, "door": self.contact, "battery": self.battery, "tamper": False, "seq": self.seq, "ts": datetime.now(UTC).isoformat()}
        await self._publish("state", state, retain=True)

    async def _set_lock(self, lock: str) -> None:
        self.lock = lock
        self.history.append(lock)
        await self._publish_state()

    async def _ack(self, cmd_id: str, status: str, duplicate: bool = False) -> None:
        body = {"v": 1, "cmd_id": cmd_id, "status": status, "lock_state": self.lock, "at": datetime.now(UTC).isoformat(), "duplicate": duplicate}
        await self._publish("ack", body)

    async def _command(self, message: aiomqtt.Message) -> None:
        expiry = getattr(message.properties, "MessageExpiryInterval", None) if message.properties else None
        try:
            cmd = json.loads(message.payload)  # type: ignore[arg-type]
        except ValueError:
            return
        self.received.append(Received(cmd, expiry, bool(message.retain), time.monotonic()))
        if self.faults.ignore or not isinstance(cmd, dict):
            return
        cmd_id = cmd.get("cmd_id")
        if not isinstance(cmd_id, str) or cmd.get("action") != "pulse_unlock":
            return
        if cmd_id in self.results:  # a repeat (QoS 1 redelivery, a replay): answer again, never run again
            await self._ack(cmd_id, self.results[cmd_id], duplicate=True)
            return
        status = self._check(cmd)
        self.results[cmd_id] = status
        if status == "executed":
            self.executed.append(cmd_id)
            self.unlock_count += 1
            await self._set_lock("unlocked")
            if self._relock is not None:
                self._relock.cancel()
            self._relock = asyncio.get_running_loop().create_task(self._relock_after(float(cmd.get("duration_s", 5))))
        elif status == "device_error":
            await self._set_lock("jammed")
        if self.faults.silent:
            return
        if self.faults.ack_delay_s:
            await asyncio.sleep(self.faults.ack_delay_s)
        await self._ack(cmd_id, status)
        if self.faults.duplicate_acks:
            await self._ack(cmd_id, status, duplicate=True)

    def _check(self, cmd: dict[str, Any]) -> str:
        if self.key is not None and not hmac.compare_digest(str(cmd.get("hmac", "")), command_mac(self.key, cmd)):
            return "rejected_signature"
        try:
            expires = datetime.fromisoformat(cmd["expires_at"])
        except (KeyError, TypeError, ValueError):
            return "rejected_expired"  # no valid expiry: treated as expired, never as "forever"
        if expires <= datetime.now(UTC):
            return "rejected_expired"
        if self.faults.jammed:
            return "device_error"
        return "executed"

    async def _relock_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._set_lock("locked")

    async def open_door(self) -> None:
        self.contact = "open"
        await self._publish_state()

    async def close_door(self) -> None:
        self.contact = "closed"
        await self._publish_state()

    async def set_battery(self, percent: int) -> None:
        self.battery = percent
        await self._publish_state()

    async def scan(self, qr: str) -> None:
        self.scans.append(time.monotonic())
        await self._publish("scan", {"v": 1, "qr": qr, "at": datetime.now(UTC).isoformat()})

    async def show_face(self, jpeg: bytes) -> None:
        """The lock's camera saw a face: the frame goes to the bridge, which asks the service."""
        await self._publish("scan", {"v": 1, "face_jpeg_b64": base64.b64encode(jpeg).decode(), "at": datetime.now(UTC).isoformat()})
