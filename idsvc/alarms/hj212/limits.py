"""Emission limits per pollutant code: GB 3095-2012 Grade II (ambient air, Table 1 and Table 2),
in the default units of HJ 212-2017 Table B.2, unless the site or the station sets its own.

Table B.2 gives mg/m3 as the default concentration unit of the gases and ng/m3 for particulate
matter, so the GB 3095 limits (ug/m3, CO in mg/m3) are converted: SO2 500/150 ug/m3 = 0.5/0.15
mg/m3, PM10 150 ug/m3 = 150,000 ng/m3. A station that reports in other units (ug/m3 is common for
ambient PM) needs its limits set in those units (site settings ``alarms.emission_limits`` or the
station's ``settings.limits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# CN of the data message -> the averaging period its Avg values stand for.
PERIOD_OF_CN = {"2061": "hour", "2031": "day"}


@dataclass(frozen=True)
class Limit:
    hour: float | None
    day: float | None
    unit: str
    name: str


GB3095_GRADE_II: dict[str, Limit] = {
    "a21026": Limit(0.5, 0.15, "mg/m3", "SO2"),
    "a21004": Limit(0.2, 0.08, "mg/m3", "NO2"),
    "a21002": Limit(0.25, 0.1, "mg/m3", "NOx"),
    "a21005": Limit(10.0, 4.0, "mg/m3", "CO"),
    "a34002": Limit(None, 150_000.0, "ng/m3", "PM10"),
    "a34004": Limit(None, 75_000.0, "ng/m3", "PM2.5"),
}
# Stored and shown, without a GB 3095 limit: CO2 (a05001), NO (a21003), smoke dust (a34013).
NAMES = {code: limit.name for code, limit in GB3095_GRADE_II.items()} | {"a05001": "CO2", "a21003": "NO", "a34013": "smoke dust"}


def effective(site_settings: dict[str, Any], station_settings: dict[str, Any]) -> dict[str, Limit]:
    """GB 3095 defaults, then the site's overrides, then the station's."""
    out = dict(GB3095_GRADE_II)
    for overrides in (((site_settings or {}).get("alarms") or {}).get("emission_limits") or {}, (station_settings or {}).get("limits") or {}):
        for code, given in overrides.items():
            base = out.get(code, Limit(None, None, "", NAMES.get(code, code)))
            given = {k: v for k, v in given.items() if v is not None}
            out[code] = Limit(given.get("hour", base.hour), given.get("day", base.day), "as set" if given else base.unit, base.name)
    return out
