"""A Zigbee lock through Zigbee2MQTT (its documentation "MQTT Topics and Messages" and
"Device-Availability"; the lock's fields from zigbee-herdsman-converters ``src/lib/exposes.ts``).

The lock's state is one flat JSON object on ``zigbee2mqtt/<friendly name>``: ``state``
``LOCK``/``UNLOCK`` and ``lock_state`` ``not_fully_locked``/``locked``/``unlocked`` (exposes.ts
``lock()``), optionally ``door_state`` (``open``, ``closed``, ``error_jammed``, ``error_forced_open``,
...), ``battery`` (%), ``tamper``. Commands go to ``zigbee2mqtt/<friendly name>/set``:
``{"state": "UNLOCK"}`` / ``{"state": "LOCK"}``; Zigbee2MQTT carries no command id or result, so
the lock's new ``lock_state`` is the confirmation. Availability is ``.../availability``: ``online``
or ``offline``, as JSON ``{"state": "online"}`` in Zigbee2MQTT 2.x and as plain text before.
A separate door sensor reports ``contact`` (true = closed). A Zigbee lock does not end a pulse by
itself (unless its ``auto_relock_time`` is set, given here as ``device_relock_s``): the bridge locks
it once the pulse is over and the door is closed.
"""

from __future__ import annotations

import json

from door_firmware_bridge.adapters.profiles.base import Publish, json_object
from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Availability, Command, CommandResult, DeviceEvent, DoorState, Recorded

LOCK_STATE = {"locked": "locked", "unlocked": "unlocked", "not_fully_locked": "jammed"}
DOOR_STATE = {"open": "open", "closed": "closed", "error_forced_open": "open"}
CONFIRMS = {"unlocked": "pulse_unlock", "locked": "lock"}


class ZigbeeLockProfile:
    def __init__(self, door: DoorConfig) -> None:
        self.door = door
        self.topic = door.device_topic.rstrip("/")
        self.sensor = door.contact_sensor.rstrip("/")
        self.relocks_itself = door.device_relock_s is not None

    def topics(self) -> list[str]:
        return [self.topic, f"{self.topic}/availability"] + ([self.sensor] if self.sensor else [])

    def on_connect(self) -> list[Publish]:
        return []

    def not_ready(self) -> str | None:
        return None

    def command(self, cmd: Command) -> Publish:
        return Publish(f"{self.topic}/set", json.dumps({"state": "LOCK" if cmd.action == "lock" else "UNLOCK"}))

    def parse(self, topic: str, payload: bytes) -> list[DeviceEvent | Publish]:
        name = self.door.name
        if topic == f"{self.topic}/availability":
            data = json_object(payload)
            state = data.get("state") if data is not None else payload.decode("utf-8", "replace").strip()
            return [Availability(name, state == "online")]
        data = json_object(payload)
        if data is None:
            return [Recorded(name, "device_message_invalid", {"topic": topic})]
        battery = data.get("battery")
        battery = int(battery) if isinstance(battery, int | float) or (isinstance(battery, str) and battery.isdigit()) else None  # older versions send strings
        tamper = data.get("tamper") if isinstance(data.get("tamper"), bool) else None
        if topic == self.sensor:
            contact = data.get("contact")
            return [DoorState(name, contact=None if not isinstance(contact, bool) else ("closed" if contact else "open"), battery=battery, tamper=tamper)]
        return self._lock(data, battery, tamper)

    def _lock(self, data: dict[str, object], battery: int | None, tamper: bool | None) -> list[DeviceEvent | Publish]:
        name = self.door.name
        reported = data.get("lock_state")
        lock = LOCK_STATE.get(reported) if isinstance(reported, str) else None
        door_state = data.get("door_state")
        contact = DOOR_STATE.get(door_state, "unknown") if isinstance(door_state, str) and not self.sensor else None
        if door_state == "error_jammed":
            lock = "jammed"
        events: list[DeviceEvent | Publish] = [DoorState(name, lock=lock, contact=contact, battery=battery, tamper=tamper)]
        if isinstance(reported, str) and reported in CONFIRMS:
            events.insert(0, CommandResult(name, None, "executed", lock, action=CONFIRMS[reported], implicit=True))
        return events
