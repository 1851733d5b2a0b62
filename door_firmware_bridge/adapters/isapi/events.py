"""What a Hikvision terminal's event means for the bridge (ISAPI Face Recognition Terminals, Pro
Series: §12.5.14 event messages, §9.17 remote verification; event codes from "Access Control Event
Types": major 0x5 "other events", minor codes below).

- ``remoteCheck: true`` (AccessControllerEvent, QRCodeEvent, FaceTemperatureMeasurementEvent): the
  terminal waits for the bridge's verdict. A QR code is decided like any pass; a person the terminal
  identified itself (``employeeNoString``, a face or card it verified) is decided from the grants;
  the verdict goes back with ``PUT /ISAPI/AccessControl/remoteCheck``.
- Any other access event is the terminal's own decision: journalled with its temperature (and a
  fever alarm if it let a high reading in), never acted on. In ``bridge_opens`` mode a QR the
  terminal only read (a reader that does not decide) is decided and opened by the bridge.
- A thermometry-only event leaves a reading that the next presentation within the window may use,
  once (temperature.ReadingLedger).
- Door events (unlocked, locked, contact open/closed/abnormally open) update the door's state.
- ANPR events (JSON or XML) are plate reads.
"""

from __future__ import annotations

from typing import Any

from door_firmware_bridge.adapters.isapi.terminal import Terminal, terminal_time
from door_firmware_bridge.config import IsapiMode
from door_firmware_bridge.model import DeviceEvent, DoorState, LocalDecision, Presented, Reading, Recorded, RemoteCheck

ACCESS_EVENTS = ("AccessControllerEvent", "QRCodeEvent", "FaceTemperatureMeasurementEvent")
MAJOR_OTHER = 5
# minor codes of major 0x5 (Access Control Event Types, "Other Events")
GRANTED = {0x01: "card", 0x26: "fingerprint", 0x36: "face+fingerprint", 0x39: "face+pin", 0x3c: "face+card", 0x3f: "face+pin+fingerprint",
           0x42: "face+card+fingerprint", 0x4b: "face", 0x4d: "employee_id+face", 0xbe: "iris", 0xe2: "employee_id"}
DENIED = {0x06: "no_permission", 0x07: "outside_schedule", 0x08: "card_expired", 0x09: "card_unknown", 0x27: "fingerprint_mismatch",
          0x37: "face+fingerprint", 0x3a: "face+pin", 0x3d: "face+card", 0x4c: "face_failed", 0x4e: "employee_id+face_failed",
          0x50: "face_not_recognised", 0xbf: "iris"}
DOOR_EVENTS = {0x15: DoorState("", lock="unlocked"), 0x16: DoorState("", lock="locked"), 0x19: DoorState("", contact="open"),
               0x1a: DoorState("", contact="closed"), 0x1b: DoorState("", contact="open")}


def _celsius(value: float, unit: Any) -> float:
    unit = str(unit or "celsius").lower()
    if unit == "fahrenheit":
        return (value - 32) * 5 / 9
    if unit == "kelvin":
        return value - 273.15
    return value


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "", True, False) else None
    except (TypeError, ValueError):
        return None


def _serial(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number == int(number) else None


def interpret(terminal: Terminal, event: dict[str, Any]) -> list[DeviceEvent | tuple[int, int]]:
    """Bridge events for one terminal event; a ``(begin, end)`` tuple asks for missed serials to be fetched."""
    name, at = terminal.door.name, terminal_time(event.get("dateTime"))
    kind = event.get("eventType")
    if kind == "ANPR" or isinstance(event.get("ANPR"), dict):
        return _plate(terminal, event.get("ANPR") or {}, at)
    if kind not in ACCESS_EVENTS:
        return []  # heartbeats and other event types
    body = event.get(kind) if isinstance(event.get(kind), dict) else {}
    out: list[DeviceEvent | tuple[int, int]] = []
    serial = _serial(body.get("serialNo"))
    if serial is not None:
        place = terminal.place(serial, at)
        if place == "repost":
            return []  # the terminal re-posted an event we have
        if place == "gap":
            out.append(((terminal.last_serial or 0) + 1, serial))
        if place == "reset":
            out.append(Recorded(name, "device_serial_reset", {"serialNo": serial, "previous": terminal.last_serial,
                                                             "note": "the terminal restarted or its event log wrapped; counting from here"}, at=at))
        terminal.saw(serial, at, reset=place == "reset")
    reading = _reading(terminal, body, at)
    qr = body.get("QRCodeInfo") if isinstance(body.get("QRCodeInfo"), str) and body.get("QRCodeInfo") else None
    employee = body.get("employeeNoString") or body.get("employeeNo")
    employee = str(employee) if employee not in (None, "") else None
    if body.get("remoteCheck") is True and serial is not None:
        check = RemoteCheck(serial, identified_as=None if qr else employee)
        out.append(Presented(name, terminal.source, at=at, qr=qr, temperature=reading or terminal.last_reading, device_serial=serial, remote_check=check))
        return out
    if qr is not None and terminal.cfg.mode is IsapiMode.bridge_opens:
        out.append(Presented(name, terminal.source, at=at, qr=qr, temperature=reading or terminal.last_reading, device_serial=serial))
        return out
    return out + _local(terminal, body, reading, serial, employee, at)


def _reading(terminal: Terminal, body: dict[str, Any], at: Any) -> Reading | None:
    value = _number(body.get("currTemperature"))
    if value is None:
        return None
    return Reading(_celsius(value, body.get("thermometryUnit")), terminal.source, at, body.get("isAbnomalTemperature") is True)  # sic: Hikvision's spelling


def _local(terminal: Terminal, body: dict[str, Any], reading: Reading | None, serial: int | None, employee: str | None, at: Any) -> list[DeviceEvent | tuple[int, int]]:
    name = terminal.door.name
    major, minor = _serial(body.get("majorEventType", body.get("major"))), _serial(body.get("subEventType", body.get("minor")))
    if major == MAJOR_OTHER and minor in DOOR_EVENTS:
        template = DOOR_EVENTS[minor]
        return [DoorState(name, lock=template.lock, contact=template.contact)]
    if reading is not None and employee is None and minor not in GRANTED and minor not in DENIED:
        terminal.last_reading = reading  # thermometry only: a later scan in the window may use it, once
    granted = (minor in GRANTED) if major == MAJOR_OTHER and (minor in GRANTED or minor in DENIED) else None
    # What names or describes the person stays under "event" (personal data: deleted when the audit
    # event is pseudonymised, idsvc.audit.chain.PERSONAL_DATA_KEYS).
    person = {k: v for k, v in {"employee_no": employee, "mask": body.get("mask"), "remote_check_result": body.get("remoteCheckResult")}.items() if v is not None}
    data = {"serialNo": serial, "major": major, "minor": minor, "method": (GRANTED | DENIED).get(minor or -1) if granted is not None else None,
            "event": person or None}
    return [LocalDecision(name, granted, {k: v for k, v in data.items() if v is not None}, reading, at=at)]


def _plate(terminal: Terminal, anpr: dict[str, Any], at: Any) -> list[DeviceEvent | tuple[int, int]]:
    plate = anpr.get("licensePlate")
    if not isinstance(plate, str) or not plate.strip():
        return [Recorded(terminal.door.name, "plate_unread", {"event": "ANPR"}, at=at)]
    confidence = _number(anpr.get("confidenceLevel"))
    return [Presented(terminal.door.name, terminal.source, at=at, plate=plate.strip(), plate_confidence=int(confidence) if confidence is not None else None)]
