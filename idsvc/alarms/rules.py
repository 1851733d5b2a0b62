"""What a sensor reading means: which values raise which alarm, and the limits a site may change.

Booleans are the detector's own verdict (Zigbee2MQTT ``smoke``, ``gas``, ...): true raises at once,
false clears. Numbers are compared with the site's limits (``Site.settings["alarms"]``), with a
hold time and a repeat count where a brief spike is not yet an alarm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Reading key -> alarm type, for the detector's own booleans.
BOOLEAN_ALARMS: dict[str, str] = {
    "smoke": "smoke",
    "gas": "gas",
    "carbon_monoxide": "carbon_monoxide",
    "water_leak": "water_leak",
    "tamper": "sensor_tamper",
    "battery_low": "sensor_battery_low",
}


@dataclass(frozen=True)
class Threshold:
    alarm_type: str
    limit: float
    hold_s: float = 0.0
    repeats: int = 1
    unit: str = ""


# Defaults; a site overrides any field in settings.alarms.<key> (registry/site_settings.py).
# Residual current: 300 mA is the usual setting of residual-current fire monitors (the range they
# must offer runs from tens of mA to 1 A). Line temperature: 70 C is the highest continuous
# conductor temperature of PVC-insulated cable. Gas concentration: in the unit the sensor reports
# (%LEL on the common Zigbee gas detectors), held 30 s so a passing whiff is not an alarm.
THRESHOLDS: dict[str, Threshold] = {
    "residual_current_ma": Threshold("residual_current_high", 300.0, unit="mA"),
    "line_temperature_c": Threshold("line_temperature_high", 70.0, unit="C"),
    "gas_value": Threshold("gas_concentration_high", 10.0, hold_s=30.0, unit="%LEL"),
}


def thresholds(site_settings: dict[str, Any]) -> dict[str, Threshold]:
    """The defaults with this site's overrides applied."""
    overrides = (site_settings or {}).get("alarms") or {}
    out = {}
    for key, default in THRESHOLDS.items():
        given = {k: v for k, v in (overrides.get(key) or {}).items() if v is not None}
        out[key] = Threshold(default.alarm_type, float(given.get("limit", default.limit)), float(given.get("hold_s", default.hold_s)), int(given.get("repeats", default.repeats)), default.unit)
    return out
