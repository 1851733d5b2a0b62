"""docs/alarms.md and docs/sensors.md say what the code does: tables and examples checked here."""

from __future__ import annotations

import json
import re

from idsvc.alarms import service
from idsvc.alarms.api import ReadingsIn, ReadingValues
from idsvc.alarms.catalogue import TYPES
from idsvc.alarms.hj212.limits import GB3095_GRADE_II
from idsvc.alarms.models import Alarm, Severity
from idsvc.alarms.rules import THRESHOLDS
from idsvc.core.db import utcnow
from tests.conftest import REPO_ROOT

ALARMS = (REPO_ROOT / "docs" / "alarms.md").read_text()
SENSORS = (REPO_ROOT / "docs" / "sensors.md").read_text()


def _rows(text: str, first_cell: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if re.match(rf"^\| `{first_cell}` \|", line)]


def test_the_types_table_is_the_catalogue() -> None:
    rows = {cells[0].strip("`"): (cells[1], cells[2]) for cells in _rows(ALARMS, r"[a-z_0-9]+") if len(cells) == 3 and cells[1] in {s.value for s in Severity}}
    assert rows == {name: (t.severity.value, t.meaning) for name, t in TYPES.items()}


def test_the_notice_example_has_the_alarm_shape() -> None:
    example = json.loads(next(line for line in ALARMS.splitlines() if line.startswith('{"kind": "alarm"')))
    alarm = Alarm(id=7, source="sensor:3", type="smoke", severity=Severity.critical, site_id=1, first_at=utcnow(), last_at=utcnow(), count=1, data={})
    assert set(example) == {"kind", "event", "alarm"} and set(example["alarm"]) == set(service.to_dict(alarm))


def test_the_thresholds_and_limits_tables_are_the_defaults() -> None:
    thresholds = {cells[0].strip("`"): cells[1].strip("`") for cells in _rows(SENSORS, r"(residual_current_ma|line_temperature_c|gas_value)") if len(cells) == 3}
    assert thresholds == {key: t.alarm_type for key, t in THRESHOLDS.items()}
    for key, t in THRESHOLDS.items():
        assert f"| `{key}` | `{t.alarm_type}` | {t.limit:g} {t.unit}" in SENSORS
    limits = {cells[0].strip("`"): cells[1:] for cells in _rows(SENSORS, r"a[0-9]{5}")}
    assert limits == {code: [lim.name, "-" if lim.hour is None else f"{lim.hour:g}", "-" if lim.day is None else f"{lim.day:g}", lim.unit] for code, lim in GB3095_GRADE_II.items()}


def test_the_readings_example_and_keys() -> None:
    assert "`values` keys: " + ", ".join(f"`{k}`" for k in ReadingValues.model_fields) + "." in SENSORS.replace("\n", " ")
    block = SENSORS.split('```json\n{"readings"', 1)[1].split("```", 1)[0]
    ReadingsIn.model_validate(json.loads('{"readings"' + block))
