"""Nuki Smart Lock (3.0 Pro, 4th generation) through its native MQTT API, v1.5 of 2024-07-30.

Topics are ``nuki/<id in hex>/<name>`` (§4.1). The lock publishes its state retained with QoS 0
(§4.2): ``state`` (§3.3 lock states), ``doorsensorState`` (§3.6), ``batteryChargeState``,
``connected`` (last will ``false``). It takes ``lockAction`` (§3.4: 1 unlock, 2 lock, 3 unlatch, ...)
with QoS 2 and a message expiry (§4.3 recommends 10 s), answers ``commandResponse`` (0 = success,
1-255 an error code of the BLE API) and reports every action it is about to run in
``lockActionEvent`` "action,trigger,auth id,code id,auto-unlock" (§4.3, triggers §3.7).

A pulse is ``lockAction 3`` (unlatch). An unlatch leaves the lock unlocked: a Nuki relocks only by
its Auto Lock (set in the Nuki app) or a lock action. So the bridge sends ``lockAction 2`` once the
pulse is over and the door is closed, unless the door's ``device_relock_s`` says the lock's own
Auto Lock does it. Door sensor state 5 is "calibrating", not a fault.
"""

from __future__ import annotations

from door_firmware_bridge.adapters.profiles.base import Publish
from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Availability, Command, CommandResult, DeviceEvent, DoorState, LocalUnlock, Recorded

UNLATCH, LOCK = "3", "2"
# §3.3 lock states of a smart lock -> the bridge's lock states.
LOCK_STATES = {0: "unknown", 1: "locked", 2: "unlocking", 3: "unlocked", 4: "locking", 5: "unlocked", 6: "unlocked", 7: "unlocking",
               253: "unknown", 254: "jammed", 255: "unknown"}
# §3.6 door sensor states -> contact (None: no sensor information). 240 "tampered" is reported as tamper.
DOOR_SENSOR = {1: None, 2: "closed", 3: "open", 4: "unknown", 5: "unknown", 16: "unknown", 240: "unknown", 255: "unknown"}
TAMPERED = 240
ACTIONS = {1: "unlock", 2: "lock", 3: "unlatch", 4: "lock_n_go", 5: "lock_n_go_unlatch", 6: "full_lock", 80: "fob", 90: "button"}
OPENING_ACTIONS = {1, 3, 4, 5}  # unlock, unlatch, lock 'n' go (unlocks first) with or without unlatch
TRIGGERS = {0: "system_or_bluetooth", 2: "button", 3: "automatic", 6: "auto_lock", 171: "homekit_or_matter", 172: "mqtt"}
MQTT_TRIGGER = 172


def _number(payload: bytes) -> int | None:
    text = payload.strip()
    return int(text) if text.isdigit() else None


class NukiProfile:
    def __init__(self, door: DoorConfig) -> None:
        self.door = door
        self.base = door.device_topic.rstrip("/")
        self.relocks_itself = door.device_relock_s is not None  # Auto Lock configured on the lock

    def topics(self) -> list[str]:
        return [f"{self.base}/{name}" for name in ("state", "doorsensorState", "batteryChargeState", "connected", "commandResponse", "lockActionEvent")]

    def on_connect(self) -> list[Publish]:
        return []

    def not_ready(self) -> str | None:
        return None

    def command(self, cmd: Command) -> Publish:
        return Publish(f"{self.base}/lockAction", LOCK if cmd.action == "lock" else UNLATCH, qos=2)

    def parse(self, topic: str, payload: bytes) -> list[DeviceEvent | Publish]:
        name, what = self.door.name, topic.rsplit("/", 1)[-1]
        value = _number(payload)
        if what == "commandResponse":
            if value is None:
                return [Recorded(name, "device_message_invalid", {"topic": topic})]
            # No command id in the API: it answers the one command in flight (there is never more than one).
            return [CommandResult(name, None, "executed" if value == 0 else "device_error")]
        if what == "state":
            return [DoorState(name, lock=LOCK_STATES.get(value if value is not None else 255, "unknown"))]
        if what == "doorsensorState":
            code = value if value is not None else 255
            return [DoorState(name, contact=DOOR_SENSOR.get(code, "unknown"), tamper=code == TAMPERED)]
        if what == "batteryChargeState":
            return [DoorState(name, battery=value)] if value is not None else []
        if what == "connected":
            return [Availability(name, payload.strip() == b"true")]
        return self._action_event(payload)

    def _action_event(self, payload: bytes) -> list[DeviceEvent | Publish]:
        """``lockActionEvent``: journalled; an opening at the lock itself (keypad, app, fob) authorises the door."""
        parts = payload.decode("ascii", "replace").strip().split(",")
        if len(parts) < 2 or not all(p.strip().isdigit() for p in parts[:2]):
            return [Recorded(self.door.name, "device_message_invalid", {"topic": "lockActionEvent"})]
        action, trigger = int(parts[0]), int(parts[1])
        if trigger == MQTT_TRIGGER:
            return []  # our own command, already journalled as command_sent/command_result
        how = f"{ACTIONS.get(action, str(action))} by {TRIGGERS.get(trigger, str(trigger))}"
        if action in OPENING_ACTIONS:
            return [LocalUnlock(self.door.name, how)]
        return [Recorded(self.door.name, "device_lock_action", {"action": ACTIONS.get(action, action), "trigger": TRIGGERS.get(trigger, trigger)})]

