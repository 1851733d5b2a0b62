"""The temperature gate (design/bridge.md rule 7).

Readings are skin temperature (+-0.5 C without a blackbody reference), so a denial says "re-check
with a clinical thermometer", never "fever". A reading counts only when it belongs to this
transaction: the same device, within ``window_s`` of the scan, and not used by anyone before: a
terminal that measured one forehead and then saw two passes must not let both people in on that one
reading (:class:`ReadingLedger`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from door_firmware_bridge.config import TemperatureConfig
from door_firmware_bridge.model import Presented, Reading

ADVICE = "re-check with a clinical thermometer"
LEDGER_SIZE = 4096


@dataclass(frozen=True)
class Verdict:
    reasons: tuple[str, ...]  # empty = the reading lets the person pass
    celsius: float | None
    alarm: str | None  # journal kind to raise: fever_detected or temperature_invalid

    def to_dict(self) -> dict[str, object]:
        return {"celsius": self.celsius, "reasons": list(self.reasons), "advice": ADVICE if self.reasons else None}


class ReadingLedger:
    """Which readings a presentation has already used: each reading is used by exactly one passage."""

    def __init__(self, size: int = LEDGER_SIZE) -> None:
        self._used: OrderedDict[str, float] = OrderedDict()
        self._size = size

    def claim(self, reading: Reading) -> bool:
        """True the first time a reading is presented; False for every later use."""
        if reading.reading_id in self._used:
            return False
        self._used[reading.reading_id] = time.monotonic()
        while len(self._used) > self._size:  # readings this old are far outside any window
            self._used.popitem(last=False)
        return True


def check(policy: TemperatureConfig, presented: Presented, required: bool, ledger: ReadingLedger) -> Verdict:
    reading = presented.temperature
    if reading is None:
        return Verdict(("temperature_missing",), None, "temperature_invalid") if required else Verdict((), None, None)
    value = reading.celsius
    if reading.source != presented.source or abs((reading.at - presented.at).total_seconds()) > policy.window_s:
        return Verdict(("temperature_not_this_transaction",), value, "temperature_invalid")
    if not ledger.claim(reading):
        return Verdict(("temperature_reading_used",), value, "temperature_invalid")
    return judge(policy, reading)


def judge(policy: TemperatureConfig, reading: Reading) -> Verdict:
    """The reading's value against the site's policy (whoever decided: the bridge, or a terminal alone)."""
    value = reading.celsius
    if not policy.plausible_min_c <= value <= policy.plausible_max_c:
        return Verdict(("temperature_implausible",), value, "temperature_invalid")
    if value >= policy.high_c or reading.abnormal_flag:
        return Verdict(("temperature_high",), value, "fever_detected")
    if value < policy.low_c:
        return Verdict(("temperature_low",), value, "temperature_invalid")
    return Verdict((), value, None)
