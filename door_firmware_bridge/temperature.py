"""The temperature gate (design/bridge.md rule 7).

Readings are skin temperature (+-0.5 C without a blackbody reference), so a denial says "re-check
with a clinical thermometer", never "fever". A reading counts only when it belongs to this
transaction: the same device and within ``window_s`` of the scan; any other reading is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from door_firmware_bridge.config import TemperatureConfig
from door_firmware_bridge.model import Presented

ADVICE = "re-check with a clinical thermometer"


@dataclass(frozen=True)
class Verdict:
    reasons: tuple[str, ...]  # empty = the reading lets the person pass
    celsius: float | None
    alarm: str | None  # journal kind to raise: fever_detected or temperature_invalid

    def to_dict(self) -> dict[str, object]:
        return {"celsius": self.celsius, "reasons": list(self.reasons), "advice": ADVICE if self.reasons else None}


def check(policy: TemperatureConfig, presented: Presented, required: bool) -> Verdict:
    reading = presented.temperature
    if reading is None:
        return Verdict(("temperature_missing",), None, "temperature_invalid") if required else Verdict((), None, None)
    value = reading.celsius
    if reading.source != presented.source or abs((reading.at - presented.at).total_seconds()) > policy.window_s:
        return Verdict(("temperature_not_this_transaction",), value, "temperature_invalid")
    if not policy.plausible_min_c <= value <= policy.plausible_max_c:
        return Verdict(("temperature_implausible",), value, "temperature_invalid")
    if value >= policy.high_c or reading.abnormal_flag:
        return Verdict(("temperature_high",), value, "fever_detected")
    if value < policy.low_c:
        return Verdict(("temperature_low",), value, "temperature_invalid")
    return Verdict((), value, None)
