"""A Tasmota relay driving a door (Tasmota documentation: Commands.md, MQTT.md).

Commands are ``cmnd/<topic>/Power<n> ON``; the relay answers on ``stat/<topic>/RESULT``
(``{"POWER1":"ON"}``) and ``stat/<topic>/POWER<n>`` (``POWER`` alone on a one-relay device);
availability is ``tele/<topic>/LWT`` ``Online``/``Offline`` (retained last will). ``PulseTime<n>``
makes the relay switch itself off: 1..111 are tenths of a second, 112..64900 are that value minus
100 in seconds. PulseTime is a setting kept in the device's flash, so it is configured once at
commissioning (docs/bridge.md) rather than written with every unlock; the bridge reads it back
(``cmnd/<topic>/PulseTime<n>`` with an empty payload answers ``{"PulseTime1":{"Set":n,"Remaining":r}}``)
whenever the relay connects, and drives the door only while it matches the door's ``pulse_s``.

Wiring (``wiring`` in the door config): a fail-secure strike sits on the relay's normally-open
contact (powered = open); a fail-safe magnetic lock on the normally-closed contact (relay energised
= lock unpowered = open). Either way ``Power ON`` opens and the end of PulseTime locks again.
"""

from __future__ import annotations

from door_firmware_bridge.adapters.profiles.base import Publish, json_object
from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Availability, Command, CommandResult, DeviceEvent, DoorState, Recorded


def tasmota_pulse_time(seconds: float) -> int:
    """PulseTime for a pulse: 1..111 are tenths of a second, 112.. are (value - 100) whole seconds."""
    tenths = round(seconds * 10)
    return tenths if tenths <= 111 else 100 + max(12, round(seconds))


def pulse_seconds(value: int) -> float:
    return value / 10 if value <= 111 else float(value - 100)


class TasmotaProfile:
    relocks_itself = True  # PulseTime switches the relay off on the device

    def __init__(self, door: DoorConfig) -> None:
        self.door = door
        self.topic = door.device_topic
        self.power = f"POWER{door.relay}"
        self.expected = tasmota_pulse_time(door.pulse_s)
        self.pulse_time: int | None = None  # as read back from the device; None = not verified yet

    def topics(self) -> list[str]:
        topics = [f"stat/{self.topic}/RESULT", f"stat/{self.topic}/{self.power}", f"tele/{self.topic}/LWT"]
        if self.door.relay == 1:
            topics.append(f"stat/{self.topic}/POWER")  # a one-relay device names it without the index
        return topics

    def _query(self) -> Publish:
        return Publish(f"cmnd/{self.topic}/PulseTime{self.door.relay}", "")

    def on_connect(self) -> list[Publish]:
        return [self._query()]

    def not_ready(self) -> str | None:
        if self.pulse_time is None:
            return "pulse_time_unverified"
        return None if self.pulse_time == self.expected else "pulse_time_mismatch"

    def command(self, cmd: Command) -> Publish:
        return Publish(f"cmnd/{self.topic}/{self.power}", "ON" if cmd.action == "pulse_unlock" else "OFF")

    def parse(self, topic: str, payload: bytes) -> list[DeviceEvent | Publish]:
        name, what = self.door.name, topic.rsplit("/", 1)[-1]
        text = payload.decode("utf-8", "replace").strip()
        if what == "LWT":
            online = text == "Online"
            if online:
                self.pulse_time = None  # a restarted relay may have lost or changed its setting: read it again
                return [Availability(name, True), self._query()]
            return [Availability(name, False)]
        if what == "RESULT":
            return self._result(json_object(payload) or {})
        return self._power(text)

    def _power(self, text: str) -> list[DeviceEvent | Publish]:
        # ON is the relay's own confirmation of the pulse; OFF is the relock PulseTime enforces.
        if text == "ON":
            return [CommandResult(self.door.name, None, "executed", "unlocked", action="pulse_unlock", implicit=True), DoorState(self.door.name, lock="unlocked")]
        if text == "OFF":
            return [DoorState(self.door.name, lock="locked")]
        return []

    def _result(self, data: dict[str, object]) -> list[DeviceEvent | Publish]:
        setting = data.get(f"PulseTime{self.door.relay}")
        if not isinstance(setting, dict):
            return []  # POWER results also arrive on stat/<topic>/POWER<n>, handled there
        found = setting.get("Set")
        self.pulse_time = found if isinstance(found, int) else -1
        if self.pulse_time == self.expected:
            return []
        return [Recorded(self.door.name, "device_misconfigured", {
            "alarm": True, "setting": f"PulseTime{self.door.relay}", "found": found, "expected": self.expected,
            "note": f"the relay would stay on {pulse_seconds(found) if isinstance(found, int) and found > 0 else 'until switched off'} s; "
                    f"set it with: cmnd/{self.topic}/PulseTime{self.door.relay} {self.expected}. The door is not driven until then.",
        })]
