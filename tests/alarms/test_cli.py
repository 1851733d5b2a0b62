"""`idsvc alarm ...` and `idsvc sensor ...` through Typer, on the test database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from idsvc.alarms import service
from idsvc.cli import app
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from tests.world import World

runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_env(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSVC_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("IDSVC_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("IDSVC_REDIS_URL", ctx.settings.redis_url)
    monkeypatch.setenv("IDSVC_REDIS_PREFIX", ctx.settings.redis_prefix)
    monkeypatch.setenv("IDSVC_MASTER_KEY", "")


def _invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_acknowledge_clear(ctx: AppContext, world: World) -> None:
    with ctx.db.session() as s:
        alarm, _ = service.raise_alarm(s, ctx.bus, service.Signal(source="door:1", type="door_forced", site_id=world.ids["site_a"], at=utcnow()), "device:1")
    assert [a["id"] for a in _invoke("alarm", "list", "--site", str(world.ids["site_a"]))] == [alarm.id]
    assert _invoke("alarm", "ack", str(alarm.id), "--note", "guard sent")["acknowledged_by"] == "operator"
    no_reason = runner.invoke(app, ["alarm", "clear", str(alarm.id), "--reason", " "])
    assert no_reason.exit_code == 1 and "[reason_required]" in no_reason.output
    assert _invoke("alarm", "clear", str(alarm.id), "--reason", "door repaired")["state"] == "cleared"
    assert _invoke("alarm", "list") == []
    missing = runner.invoke(app, ["alarm", "ack", "999999"])
    assert missing.exit_code == 1 and "[alarm_not_found]" in missing.output


def test_sensor_add_and_list(world: World) -> None:
    station = _invoke("sensor", "add", "0200A1B2C3D4E5F601234567", "--site", str(world.ids["site_a"]), "--building", str(world.ids["building_a"]),
                      "--family", "hj212", "--kind", "emission_station", "--password", "123456", "--crc", "modbus_too")
    assert (station["family"], station["settings"], station["silence_s"]) == ("hj212", {"crc": "modbus_too"}, 3600)
    no_device = runner.invoke(app, ["sensor", "add", "smoke-1", "--site", str(world.ids["site_a"]), "--building", str(world.ids["building_a"]), "--family", "zigbee2mqtt", "--kind", "smoke"])
    assert no_device.exit_code == 1 and "[device_required]" in no_device.output
    assert [s["code"] for s in _invoke("sensor", "list")] == ["0200A1B2C3D4E5F601234567"]
