"""MQTT locks and relays: one broker connection for the site, a profile per door.

Profiles translate between the bridge and a device family:
- ``acs``: the schema of docs/bridge.md (cmd/ack/state/availability/scan under acs/v1/{site}/{door});
- ``nuki``: Nuki MQTT (lockAction 3 = unlatch, a pulse the lock ends itself; commandResponse; state);
- ``tasmota``: a relay with PulseTime (cmnd/<t>/Backlog "PulseTime1 ..;Power1 ON"; stat/<t>/POWER1).

Commands go out QoS 1, never retained, with an MQTT v5 message expiry equal to the time left before
``expires_at``. A fresh client is made for every connection and commands are only handed to a
connected one, so nothing published into a dead connection can leave later (paho queues while offline).
The bridge's availability is retained with a last will of ``offline``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import datetime
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from door_firmware_bridge.adapters.base import Sink
from door_firmware_bridge.config import BrokerConfig, DoorConfig, Profile
from door_firmware_bridge.model import Availability, Command, CommandResult, DeviceEvent, DoorState, Presented, Recorded, utcnow
from door_firmware_bridge.supervisor import DeviceUnavailable

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 2.0
NUKI_STATES = {1: "locked", 2: "unlocking", 3: "unlocked", 4: "locking", 5: "unlocked", 6: "unlocked", 7: "unlocking", 254: "jammed", 255: "unknown"}
NUKI_DOOR = {2: "closed", 3: "open", 4: "unknown", 5: "fault"}


def base_topic(site: str, door: str) -> str:
    return f"acs/v1/{site}/{door}"


def bridge_availability_topic(site: str) -> str:
    return f"acs/v1/{site}/bridge/availability"


def tasmota_pulse_time(seconds: float) -> int:
    """Tasmota PulseTime: 1..111 are tenths of a second, 112.. are (value - 100) whole seconds."""
    tenths = round(seconds * 10)
    return tenths if tenths <= 111 else 100 + round(seconds)


def _json(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class MqttAdapter:
    def __init__(self, site: str, broker: BrokerConfig, client_id: str, doors: list[DoorConfig]) -> None:
        self.site = site
        self.broker = broker
        self.client_id = client_id
        self.doors = doors
        self._client: aiomqtt.Client | None = None
        self._routes: dict[str, tuple[DoorConfig, str]] = {}  # topic -> (door, what)
        for door in doors:
            for topic, what in self._topics(door).items():
                self._routes[topic] = (door, what)
        self.connects = 0

    def _topics(self, door: DoorConfig) -> dict[str, str]:
        if door.profile is Profile.acs:
            b = base_topic(self.site, door.name)
            return {f"{b}/ack": "ack", f"{b}/state": "state", f"{b}/availability": "availability", f"{b}/scan": "scan"}
        t = door.device_topic
        if door.profile is Profile.nuki:
            return {f"{t}/commandResponse": "nuki_response", f"{t}/state": "nuki_state", f"{t}/doorsensorState": "nuki_door", f"{t}/connected": "nuki_connected", f"{t}/batteryChargeState": "nuki_battery"}
        return {f"stat/{t}/POWER1": "tasmota_power", f"stat/{t}/POWER": "tasmota_power", f"tele/{t}/LWT": "tasmota_lwt"}

    def health(self) -> dict[str, Any]:
        return {"broker": f"{self.broker.host}:{self.broker.port}", "connected": self._client is not None, "connects": self.connects}

    async def run(self, sink: Sink) -> None:
        backoff = 0.2
        while True:
            will = aiomqtt.Will(bridge_availability_topic(self.site), "offline", qos=1, retain=True)
            client = aiomqtt.Client(
                self.broker.host, self.broker.port, identifier=self.client_id, username=self.broker.username, password=self.broker.password,
                protocol=aiomqtt.ProtocolVersion.V5, will=will, keepalive=self.broker.keepalive_s, timeout=5,
                clean_start=True,
            )
            try:
                async with client:
                    await client.subscribe([(topic, 1) for topic in self._routes])
                    await client.publish(bridge_availability_topic(self.site), "online", qos=1, retain=True)
                    self._client, backoff = client, 0.2
                    self.connects += 1
                    log.info("connected to the broker at %s:%s", self.broker.host, self.broker.port)
                    async for message in client.messages:
                        for event in self._events(str(message.topic), message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()):
                            await sink(event)
            except aiomqtt.MqttError as exc:
                log.warning("broker connection lost: %s; reconnecting in %.1f s", exc, backoff)
            finally:
                self._client = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def send(self, door: DoorConfig, cmd: Command) -> None:
        client = self._client
        if client is None:
            raise DeviceUnavailable("broker_disconnected")
        topic, payload = self._command(door, cmd)
        expiry = Properties(PacketTypes.PUBLISH)
        expiry.MessageExpiryInterval = cmd.ttl_s
        try:
            await client.publish(topic, payload, qos=1, retain=False, properties=expiry, timeout=PUBLISH_TIMEOUT_S)
        except aiomqtt.MqttError as exc:
            raise DeviceUnavailable("broker_publish_failed") from exc

    def _command(self, door: DoorConfig, cmd: Command) -> tuple[str, str]:
        if door.profile is Profile.acs:
            return f"{base_topic(self.site, door.name)}/cmd", json.dumps(cmd.to_wire(door.command_key))
        if door.profile is Profile.nuki:
            return f"{door.device_topic}/lockAction", "3"  # unlatch: the lock pulls the latch and relocks itself
        return f"cmnd/{door.device_topic}/Backlog", f"PulseTime1 {tasmota_pulse_time(door.pulse_s)};Power1 ON"

    def _events(self, topic: str, payload: bytes) -> list[DeviceEvent]:
        route = self._routes.get(topic)
        if route is None:
            return []
        door, what = route
        text = payload.decode("utf-8", "replace").strip()
        name = door.name
        if what == "ack":
            data = _json(payload)
            if data is None or not isinstance(data.get("cmd_id"), str) or not isinstance(data.get("status"), str):
                return [Recorded(name, "device_message_invalid", {"topic": topic})]
            return [CommandResult(name, data["cmd_id"], data["status"], data.get("lock_state"), bool(data.get("duplicate")))]
        if what == "state":
            data = _json(payload) or {}
            battery = data.get("battery")
            tamper = data.get("tamper")
            return [DoorState(name, data.get("lock"), data.get("door"), battery if isinstance(battery, int) else None, tamper if isinstance(tamper, bool) else None)]
        if what == "availability":
            return [Availability(name, text == "online")]
        if what == "scan":
            return self._scan(door, payload, topic)
        if what == "nuki_response":
            return [CommandResult(name, None, "executed" if text == "0" else "device_error")]
        if what == "nuki_state":
            return [DoorState(name, lock=NUKI_STATES.get(int(text) if text.isdigit() else 255, "unknown"))]
        if what == "nuki_door":
            return [DoorState(name, contact=NUKI_DOOR.get(int(text) if text.isdigit() else 4, "unknown"))]
        if what == "nuki_connected":
            return [Availability(name, text == "true")]
        if what == "nuki_battery":
            return [DoorState(name, battery=int(text))] if text.isdigit() else []
        if what == "tasmota_power":
            # ON is the relay's own confirmation of the pulse; OFF is the relock PulseTime enforces.
            return [CommandResult(name, None, "executed", "unlocked")] if text == "ON" else [DoorState(name, lock="locked")]
        if what == "tasmota_lwt":
            return [Availability(name, text == "Online")]
        return []

    def _scan(self, door: DoorConfig, payload: bytes, topic: str) -> list[DeviceEvent]:
        data = _json(payload)
        if data is None:
            return [Recorded(door.name, "device_message_invalid", {"topic": topic})]
        at = utcnow()
        face = data.get("face_jpeg_b64")
        qr = data.get("qr")
        return [Presented(door.name, source=f"mqtt:{door.name}", at=at, qr=qr if isinstance(qr, str) else None, face_jpeg=base64.b64decode(face) if isinstance(face, str) else None)]

    async def publish_event(self, door: DoorConfig, kind: str, data: dict[str, Any]) -> None:
        """Tell the door (and dashboards) what was decided: {b}/event, QoS 0, never retained, best effort."""
        client = self._client
        if client is None or door.profile is not Profile.acs:
            return
        body = {"v": 1, "type": kind, "at": datetime.now().astimezone().isoformat(), **data}
        try:
            await client.publish(f"{base_topic(self.site, door.name)}/event", json.dumps(body, default=str), qos=0, retain=False, timeout=PUBLISH_TIMEOUT_S)
        except aiomqtt.MqttError:
            log.debug("could not publish the %s event for %s", kind, door.name)
