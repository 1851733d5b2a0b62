"""docs/bridge.md is what installers integrate from: it must name every config field, every event
kind the bridge journals and every reason code the bridge itself gives."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from door_firmware_bridge import config
from door_firmware_bridge.faults import POINTS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "bridge.md").read_text()
SOURCE = "\n".join(p.read_text() for p in (ROOT / "door_firmware_bridge").rglob("*.py") if "sensors" not in p.parts and "simulators" not in p.parts)


def _models() -> list[type[BaseModel]]:
    return [m for m in vars(config).values() if isinstance(m, type) and issubclass(m, config.Strict) and m is not config.Strict]


def test_every_config_field_is_in_the_reference() -> None:
    missing = {f"{m.__name__}.{name}" for m in _models() for name in m.model_fields if not re.search(rf"\b{name}\b", DOC)}
    assert not missing


def test_every_event_kind_is_listed() -> None:
    patterns = [r'\brecord\(\s*"([a-z_]+)"', r'Recorded\([^,]+,\s*"([a-z_]+)"', r'Entry\(new_id\(\), "([a-z_]+)"', r'_record\(\s*"([a-z_]+)"']
    kinds = {k for p in patterns for k in re.findall(p, SOURCE)} | {a for a in re.findall(r'verdict\.alarm|"(fever_detected|temperature_invalid)"', SOURCE) if a}
    kinds |= {"access_granted", "access_denied", "device_online", "device_offline", "door_forced", "door_opened"}
    listed = set(re.findall(r"`([a-z_]+)`", DOC.split("Event kinds:", 1)[1].split("Alarms carry", 1)[0]))
    assert kinds <= listed, sorted(kinds - listed)


def test_every_bridge_reason_code_is_documented() -> None:
    reasons = set(re.findall(r'Decision\.deny\([^)]*?\)', SOURCE, re.S))
    service_codes = set(re.findall(r"`([a-z_]+)`", (ROOT / "docs" / "device-api.md").read_text()))  # the service's own, documented there
    codes = {c for call in reasons for c in re.findall(r'"([a-z_]+)"', call)} - {"bridge", "offline", "online", "qr", "plate", "face", "plate+qr", "terminal", "age_s"} - service_codes
    codes |= set(re.findall(r'Verdict\(\("([a-z_]+)",\)', SOURCE)) | {"presentation_late", "presentation_from_future", "decision_late", "unknown_face"}
    documented = set(re.findall(r"`([a-z_]+)", DOC.split("Reason codes the bridge adds", 1)[1].split("### The offline feed", 1)[0]))
    assert codes <= documented, sorted(codes - documented)


def test_fault_points_are_documented() -> None:
    assert all(f"`{p}`" in DOC for p in POINTS)
