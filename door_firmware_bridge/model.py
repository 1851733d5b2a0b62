"""What flows through the bridge: events from devices in, decisions and pulse commands out."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """Time-ordered and unique across restarts (ms clock + 64 random bits): event and command ids."""
    return f"{time.time_ns() // 1_000_000:013x}{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Reading:
    """A skin-temperature reading; ``source``/``at`` tie it to one transaction at one device, and
    ``reading_id`` names it so that one reading lets at most one person pass."""

    celsius: float
    source: str
    at: datetime
    abnormal_flag: bool | None = None  # what the terminal itself said (Hikvision isAbnomalTemperature)
    reading_id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class RemoteCheck:
    """The terminal asked for the verdict and waits for it (Hikvision remote verification): the
    answer goes back to the terminal, which shows it and opens the door itself."""

    serial: int
    identified_as: str | None = None  # the terminal's own identification (employeeNo), when it verified a face or card


@dataclass(frozen=True)
class Presented:
    """Someone or something presented evidence at a door: a QR, a plate, a face frame (any may be None)."""

    door: str
    source: str  # which device saw it (terminal serial, camera), for tying readings to it
    at: datetime = field(default_factory=utcnow)
    qr: str | None = None
    plate: str | None = None
    plate_confidence: int | None = None
    face_jpeg: bytes | None = None
    temperature: Reading | None = None
    device_serial: int | None = None
    remote_check: RemoteCheck | None = None
    received_at: datetime = field(default_factory=utcnow)  # the bridge's clock when the device reported it
    mono: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class CommandResult:
    """The device's own answer to a command (``cmd_id`` None: a profile without ids, one in flight).

    ``action`` says which kind of command it confirms when the device's answer is its new state
    (Zigbee ``lock_state``, Tasmota ``POWER``): such an ``implicit`` result confirms only a command of
    that action in flight, and is no news when none is (the state itself goes to the supervisor too).
    """

    door: str
    cmd_id: str | None
    status: str  # executed, rejected_expired, rejected_duplicate, rejected_busy, device_error
    lock_state: str | None = None
    duplicate: bool = False
    action: str | None = None
    implicit: bool = False


@dataclass(frozen=True)
class LocalUnlock:
    """The device unlocked by its own means (keypad, fob, app, button): an opening now is not forced."""

    door: str
    how: str


@dataclass(frozen=True)
class DoorState:
    door: str
    lock: str | None = None  # locked, unlocking, unlocked, locking, open, jammed, unknown
    contact: str | None = None  # closed, open, unknown, fault
    battery: int | None = None
    tamper: bool | None = None


@dataclass(frozen=True)
class Availability:
    door: str
    online: bool


@dataclass(frozen=True)
class Recorded:
    """A device event that only needs journalling (recovered terminal events, tamper, ...)."""

    door: str | None
    kind: str
    data: dict[str, Any]
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class LocalDecision:
    """A terminal decided by itself (its own face library, cards): journalled with the temperature it
    measured, which the bridge judges with the site's policy (a fever admitted by the terminal is an alarm)."""

    door: str
    granted: bool | None  # None: an event of the terminal that is no access decision
    data: dict[str, Any]
    reading: Reading | None
    at: datetime = field(default_factory=utcnow)


DeviceEvent = Presented | CommandResult | DoorState | Availability | Recorded | LocalUnlock | LocalDecision


@dataclass(frozen=True)
class Command:
    cmd_id: str
    duration_s: float
    issued_at: datetime
    expires_at: datetime
    decision_id: str | None
    action: str = "pulse_unlock"  # or "lock": the bridge's own relock of a lock that does not relock itself
    remote_check: RemoteCheck | None = None  # a verdict the terminal waits for, instead of a door command

    @classmethod
    def pulse(cls, duration_s: float, ttl_s: float, decision_id: str | None, remote_check: RemoteCheck | None = None) -> Command:
        now = utcnow()
        return cls(new_id(), duration_s, now, now + timedelta(seconds=ttl_s), decision_id, remote_check=remote_check)

    @classmethod
    def lock(cls, ttl_s: float, decision_id: str | None) -> Command:
        now = utcnow()
        return cls(new_id(), 0.0, now, now + timedelta(seconds=ttl_s), decision_id, action="lock")

    @property
    def ttl_s(self) -> int:
        """Whole seconds left, for MQTT v5 message expiry (at least 1: 0 would mean 'never expires')."""
        return max(1, int((self.expires_at - utcnow()).total_seconds()))

    def to_wire(self, key: bytes | None = None) -> dict[str, Any]:
        """The acs command; with the door's key, an ``hmac`` the lock checks (a broker login alone cannot open it)."""
        body: dict[str, Any] = {
            "v": 1,
            "cmd_id": self.cmd_id,
            "action": self.action,
            "duration_s": self.duration_s,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "decision_id": self.decision_id,
        }
        if key is not None:
            body["hmac"] = command_mac(key, body)
        return body


def command_mac(key: bytes, body: dict[str, Any]) -> str:
    """HMAC-SHA256 over the command's canonical JSON (sorted keys, no spaces, without ``hmac``), hex."""
    fields = {k: v for k, v in body.items() if k != "hmac"}
    return hmac.new(key, json.dumps(fields, sort_keys=True, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...]
    source: str  # online, offline, bridge (refused before asking anyone)
    credential: str  # qr, plate, face, plate+qr
    decision_id: str = field(default_factory=new_id)
    person_id: int | None = None
    versions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def deny(cls, source: str, credential: str, *reasons: str, versions: dict[str, Any] | None = None) -> Decision:
        return cls(False, tuple(sorted(set(reasons))), source, credential, versions=versions or {})

    def with_reasons(self, *extra: str) -> Decision:
        """The same decision with more reasons against it: any reason makes it a denial."""
        if not extra:
            return self
        reasons = tuple(sorted(set(self.reasons) | set(extra)))
        return Decision(False, reasons, self.source, self.credential, self.decision_id, self.person_id, self.versions)
