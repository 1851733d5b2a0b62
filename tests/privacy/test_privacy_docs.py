"""docs/privacy.md is the contract for data-protection officers: its tables are checked against the code."""

from __future__ import annotations

import re

from idsvc.audit.chain import PERSONAL_DATA_KEYS
from idsvc.auth import health_data
from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.config import Settings
from idsvc.faces.models import ConsentPurpose
from idsvc.privacy.rotation import SEALED_COLUMNS
from idsvc.registry import personal, site_settings
from tests.conftest import REPO_ROOT

PAGE = (REPO_ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")


def _table_after(heading_text: str, first_column: str) -> list[list[str]]:
    """Rows of the first table after a line containing heading_text whose header starts with first_column."""
    lines = PAGE.splitlines()
    start = next(i for i, line in enumerate(lines) if heading_text in line)
    header = next(i for i in range(start, len(lines)) if lines[i].startswith(f"| {first_column} |"))
    rows = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _code(cell: str) -> str:
    return cell.strip("`")


def test_personal_data_keys() -> None:
    assert {_code(r[0]) for r in _table_after("and the values under these data keys", "data key")} == set(PERSONAL_DATA_KEYS)


def test_sealed_columns() -> None:
    rows = _table_after("which `idsvc keys rotate` re-seals", "table")
    assert [(_code(r[0]), r[1].split()[0].strip("`")) for r in rows] == [(c.table, c.column.key) for c in SEALED_COLUMNS]


def test_consent_purposes() -> None:
    assert [_code(r[0]) for r in _table_after("separate* consent per purpose", "purpose")] == [p.value for p in ConsentPurpose]


def test_retention_bounds_and_defaults() -> None:
    rows = {_code(r[1]): r for r in _table_after("Each site may set its own periods", "period")}
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    expected = {
        "face_template_days": (site_settings.FACE_TEMPLATE_DAYS, "IDSVC_FACE_TEMPLATE_GRACE_DAYS", defaults.face_template_grace_days),
        "contact_days": (site_settings.CONTACT_DAYS, "IDSVC_RETENTION_CONTACT_DAYS", defaults.retention_contact_days),
        "decision_days": (site_settings.DECISION_DAYS, "IDSVC_RETENTION_DECISION_DAYS", defaults.retention_decision_days),
    }
    assert set(rows) == set(expected)
    for key, ((low, high), variable, default) in expected.items():
        assert rows[key][3] == f"{low} to {high}", key
        assert rows[key][2] == f"`{variable}` ({default})", key
    fields = site_settings.SiteRetentionSettings.model_fields
    for key, ((low, high), _, _) in expected.items():  # the settings model enforces the same bounds
        metadata = {type(m).__name__: m for m in fields[key].metadata}
        assert (metadata["Ge"].ge, metadata["Le"].le) == (low, high), key


def test_who_sees_health_data_and_what_of_a_finding() -> None:
    rows = _table_after("## Health data: body temperature", "reader")
    documented = {_code(r[0]) for r in rows if r[1].startswith("shown")}
    assert documented == {role.value for role in Role if health_data.sees_health_data(Principal(role=role))}
    assert {_code(r[0]) for r in _table_after("## Health data: body temperature", "health finding type")} == health_data.HEALTH_TYPES
    assert {_code(r[0]) for r in _table_after("## Health data: body temperature", "data key kept")} == health_data.FINDING_DATA_SHOWN
    assert all(f"`{field}`" in PAGE for field in health_data.FINDING_FIELDS_WITHHELD)


def test_every_test_named_exists() -> None:
    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", PAGE)
    assert len(named) >= 20
    missing = [f"{path}::{name}" for path, name in named if f"def {name}(" not in (REPO_ROOT / path).read_text(encoding="utf-8")]
    assert missing == []


def test_the_person_fields_of_the_data_model() -> None:
    page = (REPO_ROOT / "docs" / "data-model.md").read_text(encoding="utf-8")
    lines = page.splitlines()
    header = lines.index("| field | type | notes |")
    documented = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        documented.append(line.split("|")[1].strip().strip("`"))
    assert documented == ["display_name", "kind", *[f for f in personal.PersonalRecord.model_fields if f != "display_name"]]
    assert set(personal.REGISTRATION_FIELDS) == set(site_settings.RegistrationField.__args__)  # type: ignore[attr-defined]
