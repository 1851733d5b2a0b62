"""The site config and the door-bridge command: errors name the field; status reads a running bridge's report."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from door_firmware_bridge.cli import app
from door_firmware_bridge.config import HARD_STALENESS_CAP_S, ConfigError, parse, to_toml
from tests.bridge.conftest import ServiceProcess, Site, bridge_config

GOOD = """
site = "park-1"

[service]
url = "https://idsvc.example.org"
device_key = "idsvc_example"

[offline]
root_public_key = "MCowBQYDK2VwAyEA7DIcYHVg1IncXmiOB8h0FQBfAsjxKwKqr6A0y1Ho3O8="
cache_dir = "{tmp}/cache"

[journal]
path = "{tmp}/journal.db"

[[doors]]
name = "flat-101"
door_id = 3
site_id = 1

[[doors]]
name = "gate-in"
door_id = 4
site_id = 1
adapter = "isapi"
lane = "plate_and_pass"
require_temperature = true
[doors.isapi]
base_url = "http://10.0.0.20"
username = "admin"
password = "secret"
allowed_sources = ["10.0.0.20", "10.0.0.21"]
"""


def _minimal(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {"site": "s1", "service": {"url": "http://svc", "device_key": "k"}, "offline": {"enabled": False},
                               "doors": [{"name": "d1", "door_id": 1, "site_id": 1}]}
    return data | changes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"offline": {"max_staleness_s": HARD_STALENESS_CAP_S + 1, "root_public_key": "x"}}, "offline.max_staleness_s"),
        ({"offline": {"enabled": True}}, "root_public_key"),
        ({"doors": [{"name": "d1", "door_id": 1, "site_id": 1, "pulse_s": 0}]}, "doors[0].pulse_s"),
        ({"doors": [{"name": "d1", "door_id": 1, "site_id": 1, "adapter": "isapi"}]}, "needs an [doors.isapi] table"),
        ({"doors": [{"name": "d1", "door_id": 1, "site_id": 1, "profile": "nuki"}]}, "needs device_topic"),
        ({"doors": [{"name": "d1", "door_id": 1, "site_id": 1, "command_ttl_s": 2, "ack_timeout_s": 5}]}, "command_ttl_s"),
        ({"temperature": {"high_c": 36.0, "low_c": 36.2}}, "temperature: Value error, need plausible_min_c <= low_c < high_c"),
        ({"service": {"url": "http://svc"}}, "exactly one of device_key and device_key_file"),
        ({"doors": [{"name": "d1", "door_id": 1, "site_id": 1, "unlock_forever": True}]}, "doors[0].unlock_forever"),
        ({"doors": [{"name": "d1", "door_id": 1, "site_id": 1}, {"name": "d2", "door_id": 2, "site_id": 2}]}, "one site"),
        ({"doors": [{"name": "d1", "door_id": 1, "site_id": 1, "adapter": "isapi", "lane": "plate_only",
                     "isapi": {"base_url": "http://t", "username": "u", "password": "p"}}]}, "needs isapi.allowed_sources"),
    ],
)
def test_bad_config_names_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(_minimal(**changes))
    assert message in str(error.value)


def test_defaults_follow_the_design() -> None:
    cfg = parse(_minimal())
    assert cfg.offline.max_staleness_s == 15 * 60
    assert (cfg.temperature.high_c, cfg.temperature.plausible_min_c, cfg.temperature.plausible_max_c) == (37.3, 32.0, 45.0)
    assert cfg.client_id == "door-bridge-s1"


def test_check_config_and_status(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(GOOD.format(tmp=tmp_path))
    runner = CliRunner()
    ok = runner.invoke(app, ["check-config", "--config", str(path), "--no-network"])
    assert ok.exit_code == 0, ok.output
    assert "config ok" in ok.output and "lane=plate_and_pass" in ok.output and "staleness limit 900 s" in ok.output
    path.write_text(GOOD.format(tmp=tmp_path).replace("door_id = 4", "door_id = -4"))
    bad = runner.invoke(app, ["check-config", "--config", str(path)])
    assert bad.exit_code == 2 and "doors[1].door_id" in bad.output
    missing = runner.invoke(app, ["check-config", "--config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    path.write_text(GOOD.format(tmp=tmp_path))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "status.json").write_text(json.dumps({"site": "park-1", "doors": {"flat-101": {"lock": "locked"}}}))
    status = runner.invoke(app, ["status", "--config", str(path)])
    assert status.exit_code == 0 and json.loads(status.output)["doors"]["flat-101"]["lock"] == "locked"


def test_written_config_reads_back_the_same(tmp_path: Path) -> None:
    cfg = parse(tomllib.loads(GOOD.format(tmp=tmp_path)))
    assert parse(tomllib.loads(to_toml(cfg.model_dump(mode="json", exclude_none=True)))) == cfg


def test_check_config_asks_the_service_and_the_broker(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    """A well-formed config can still be wrong: a bad key, an unreachable service, a door that is not the bridge's."""
    runner = CliRunner()

    def check(**overrides: object) -> tuple[int, str]:
        cfg = bridge_config(site, tmp_path, service_url=service.url, **overrides)
        path = tmp_path / "site.toml"
        path.write_text(to_toml(cfg.model_dump(mode="json", exclude_none=True)))
        result = runner.invoke(app, ["check-config", "--config", str(path)])
        return result.exit_code, result.output

    code, output = check()
    assert code == 0 and "key accepted, every door bound" in output and "config ok" in output, output
    code, output = check(service={"url": service.url, "device_key": "idsvc_not-a-key", "timeout_s": 3.0})
    assert code == 1 and "service.device_key: the service refused the key (invalid_credentials)" in output
    code, output = check(service={"url": "http://127.0.0.1:9", "device_key": site.bridge_key, "timeout_s": 1.0})
    assert code == 1 and "service.url: http://127.0.0.1:9 is not reachable" in output
    code, output = check(flat={"door_id": 99999})
    assert code == 1 and "doors[0].door_id: door 99999 (flat-101) does not exist or is not bound to this bridge" in output
    code, output = check(broker={"host": "127.0.0.1", "port": 9, "client_id": "bridge-check"})
    assert code == 1 and "broker: 127.0.0.1:9 refused or is not reachable" in output


def test_run_refuses_an_unknown_fault_point(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(GOOD.format(tmp=tmp_path))
    result = CliRunner().invoke(app, ["run", "--config", str(path)], env={"DOOR_BRIDGE_CRASH_AT": "somewhere"})
    assert result.exit_code == 2 and "DOOR_BRIDGE_CRASH_AT must be one of decision_journalled" in result.output
