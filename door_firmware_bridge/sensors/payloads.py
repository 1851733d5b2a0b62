"""Vendor payloads into normalised readings, from the published formats:

- Zigbee2MQTT: the device's state as one flat JSON object on ``<base>/<friendly_name>`` (booleans
  true = alarm; older versions send numbers as strings; keys may be null = unknown), and
  availability on ``<base>/<friendly_name>/availability``: ``{"state": "online"}`` or, in the
  legacy format, the bare word ``online`` / ``offline``.
- Tasmota: ``<prefix>/<topic>/SENSOR`` JSON with one object per attached sensor (``{"ANALOG":
  {"A1": 12}, "DS18B20-1": {"Temperature": 41.5}}``) and ``<prefix>/<topic>/LWT`` ``Online`` /
  ``Offline`` (retained, the last will).

Anything not understood is left out of the reading (and logged by the caller), never guessed.
"""

from __future__ import annotations

import json
import math
from typing import Any

from door_firmware_bridge.sensors.config import BOOLEAN_KEYS, NUMBER_KEYS

_TRUE = {"true", "on", "1", "yes"}
_FALSE = {"false", "off", "0", "no"}


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _path(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def mapped(data: dict[str, Any], readings: dict[str, list[str]]) -> dict[str, float]:
    out = {}
    for key, paths in readings.items():
        numbers = [n for n in (as_number(_path(data, p)) for p in paths) if n is not None]
        if numbers:
            out[key] = max(numbers)  # several lines measured: the hottest one counts
    return out


def zigbee_state(payload: bytes, readings: dict[str, list[str]]) -> dict[str, Any] | None:
    """The normalised values of a Zigbee2MQTT state message, or None when it is not a JSON object."""
    data = _json_object(payload)
    if data is None:
        return None
    values: dict[str, Any] = {}
    for key in BOOLEAN_KEYS:
        flag = as_bool(data.get(key))
        if flag is not None:
            values[key] = flag
    for key in NUMBER_KEYS:
        number = as_number(data.get(key))
        if number is not None:
            values[key] = number
    values.update(mapped(data, readings))
    return values


def zigbee_availability(payload: bytes) -> bool | None:
    data = _json_object(payload)
    word = data.get("state") if data is not None else payload.decode("utf-8", "replace").strip()
    return {"online": True, "offline": False}.get(str(word).lower())


def tasmota_sensor(payload: bytes, readings: dict[str, list[str]]) -> dict[str, Any] | None:
    data = _json_object(payload)
    return None if data is None else mapped(data, readings)


def tasmota_lwt(payload: bytes) -> bool | None:
    return {"online": True, "offline": False}.get(payload.decode("utf-8", "replace").strip().lower())
