"""The lock maker's document names every face reason and warning the service can answer, and no other."""

from __future__ import annotations

import re

from idsvc.faces.service import DECISION_REASONS, DECISION_WARNINGS
from idsvc.registry.access import Reason as AccessReason
from idsvc.registry.models import FaceMode
from tests.conftest import REPO_ROOT


def face_section() -> str:
    text = (REPO_ROOT / "docs" / "device-api.md").read_text()
    start = text.index("## `POST /v1/device/face-verify`")
    return text[start : text.index("\n## ", start + 1)]


def table_codes(section: str, heading: str) -> set[str]:
    """Codes in the first column of the tables that follow `heading` up to the next heading line."""
    part = section[section.index(heading) :]
    part = part[: part.index("\n### ", 1)] if "\n### " in part[1:] else part
    return {code for line in part.splitlines() if line.startswith("| `") for code in re.findall(r"`([a-z_]+)`", line.split("|")[1])}


def test_every_face_reason_and_warning_is_documented() -> None:
    section = face_section()
    reasons = table_codes(section, "### Reason codes")
    warnings = table_codes(section[section.index("Warnings:") :], "Warnings:")
    assert set(DECISION_REASONS) <= reasons
    assert reasons - warnings <= set(DECISION_REASONS)  # nothing documented that the code cannot answer
    assert warnings == set(DECISION_WARNINGS)
    # the registry's reasons follow, documented in the verify section's table
    text = (REPO_ROOT / "docs" / "device-api.md").read_text()
    assert all(f"`{value}`" in text for name, value in vars(AccessReason).items() if name.isupper())


def test_every_face_mode_is_documented() -> None:
    table = face_section().split("### Request")[0].split("|---|")[-1]  # the rows after the header
    assert {m.value for m in FaceMode} == set(re.findall(r"^\| `(\w+)`", table, re.M))
