"""docs/operations.md as an operator follows it: the proxy and systemd examples are valid (checked by
nginx, caddy and systemd-analyze where installed), the metrics table is what /metrics serves, JSON
logs are JSON, `idsvc db current` tells an old schema from a current one, and a restored backup
verifies and forgets what came after it."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from idsvc.auth.principal import OPERATOR
from idsvc.cli import app as cli
from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.core import metrics
from idsvc.db.migrate import upgrade
from idsvc.passes import issuing
from tests.conftest import REPO_ROOT
from tests.world import World

DOC = (REPO_ROOT / "docs" / "operations.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.DOTALL)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed here")
    return found


def test_the_caddyfile_is_valid(tmp_path: Path) -> None:
    (config,) = _blocks("caddyfile")
    assert "flush_interval -1" in config and "max_size 8MB" in config  # event streams unbuffered, 8 MiB bodies
    (tmp_path / "Caddyfile").write_text(config)
    result = subprocess.run([_tool("caddy"), "validate", "--config", str(tmp_path / "Caddyfile"), "--adapter", "caddyfile"],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_nginx_site_is_valid(tmp_path: Path) -> None:
    (site,) = _blocks("nginx")
    for needed in ("proxy_buffering off", "X-Forwarded-For", "client_max_body_size 8m", "proxy_read_timeout 3600s"):
        assert needed in site
    # The certificate paths are the installer's; the test makes a pair where the config expects them.
    certs = tmp_path / "ssl"
    certs.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=idsvc.example.org",
                    "-keyout", str(certs / "privkey.pem"), "-out", str(certs / "fullchain.pem")], check=True, capture_output=True, timeout=60)
    site = site.replace("/etc/ssl/idsvc/", f"{certs}/")
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(f"error_log {tmp_path}/logs/error.log;\npid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n"
                                         "access_log off;\n" + "".join(f"{kind}_temp_path {tmp_path}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                                         + f"{site}\n}}\n")
    result = subprocess.run([_tool("nginx"), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_systemd_units_are_valid(tmp_path: Path) -> None:
    units = _blocks("ini")
    assert len(units) == 3
    analyze = _tool("systemd-analyze")
    idsvc = shutil.which("idsvc") or str(Path(sys.executable).with_name("idsvc"))
    names = ["idsvc.service", "idsvc-daily.service", "idsvc-daily.timer"]
    for name, unit in zip(names, units, strict=True):
        # Where the installer puts idsvc and its settings, this machine has its own.
        (tmp_path / name).write_text(unit.replace("/opt/idsvc/bin/idsvc", idsvc).replace("/etc/idsvc/idsvc.env", str(tmp_path / "idsvc.env")))
    (tmp_path / "idsvc.env").write_text("IDSVC_LOG_FORMAT=json\n")
    result = subprocess.run([analyze, "verify", *(str(tmp_path / n) for n in names)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "idsvc" in line and "User" not in line and "Failed to" not in line]
    if result.returncode != 0 and "System has not been booted with systemd" in result.stderr:
        pytest.skip("systemd-analyze cannot verify units in this container")
    assert problems == [], result.stdout + result.stderr
    service = units[0]
    assert "ExecStart=/opt/idsvc/bin/idsvc serve" in service and "PROMETHEUS_MULTIPROC_DIR=/run/idsvc" in service and "RuntimeDirectory=idsvc" in service
    for command in re.findall(r"^ExecStart=/opt/idsvc/bin/idsvc (.+)$", "\n".join(units), re.MULTILINE):
        words = [w for w in command.split() if not w.startswith("-")]
        assert CliRunner().invoke(cli, [*words, "--help"]).exit_code == 0, command  # every command the units run exists


def test_the_metrics_table_is_what_metrics_serves(client: TestClient, world: World) -> None:
    table = DOC.split("<!-- metrics:start -->", 1)[1].split("<!-- metrics:end -->", 1)[0]
    documented = {name: kind for name, kind in re.findall(r"^\| `(idsvc_[a-z_]+)` \| (\w+) \|", table, re.MULTILINE)}
    every = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    defined = {m._name if not isinstance(m, metrics.Counter) else m._name + "_total": m._type for m in every}
    assert documented == defined
    served = {f.name for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert {name.removesuffix("_total") for name in documented} <= served  # the parser names counters without _total


def _sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_count_decisions_by_result_and_reason_and_time_the_door_call(ctx: AppContext, client: TestClient, world: World) -> None:
    device, door = world.auth("device1"), world.ids["door1"]
    with ctx.db.session() as s:
        good = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]).text
    before = client.get("/metrics").text
    assert client.post("/v1/device/verify", headers=device, json={"door_id": door, "qr_text": good}).json()["decision"] == "allow"
    assert client.post("/v1/device/verify", headers=device, json={"door_id": door, "qr_text": "NH1:X"}).json()["reasons"] == ["base45_invalid"]
    after = client.get("/metrics").text
    assert _sample(after, "idsvc_decisions_total", method="qr", result="allow") - _sample(before, "idsvc_decisions_total", method="qr", result="allow") == 1
    assert _sample(after, "idsvc_decisions_total", method="qr", result="deny") - _sample(before, "idsvc_decisions_total", method="qr", result="deny") == 1
    assert _sample(after, "idsvc_decision_reasons_total", method="qr", reason="base45_invalid") - _sample(before, "idsvc_decision_reasons_total", method="qr", reason="base45_invalid") == 1
    timed = "idsvc_http_request_duration_seconds_count"
    assert _sample(after, timed, route="/v1/device/verify", method="POST", status="2xx") - _sample(before, timed, route="/v1/device/verify", method="POST", status="2xx") == 2
    assert _sample(after, "idsvc_face_engine_up") in (0.0, 1.0)
    assert _sample(after, "idsvc_feed_version") >= 1  # the pass issued above was a committed change


def test_json_logs_are_one_object_per_line_with_utc_times() -> None:
    probe = ("import logging, logging.config\n"
             "from idsvc.core.logs import logging_config\n"
             "logging.config.dictConfig(logging_config('info', 'json'))\n"
             "logging.getLogger('idsvc.test').warning('door %s forced', 7, extra={'door_id': 7})\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    (line,) = result.stderr.strip().splitlines()
    record = json.loads(line)
    assert record["level"] == "WARNING" and record["logger"] == "idsvc.test" and record["message"] == "door 7 forced" and record["door_id"] == 7
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", record["time"])


def _env(monkeypatch: pytest.MonkeyPatch, url: str, data_dir: Path) -> None:
    for name, value in (("IDSVC_DATABASE_URL", url), ("IDSVC_DATA_DIR", str(data_dir)), ("IDSVC_REDIS_URL", ""), ("IDSVC_MASTER_KEY", "")):
        monkeypatch.setenv(name, value)


def test_db_current_tells_an_old_schema_from_a_current_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'idsvc.db'}"
    _env(monkeypatch, url, tmp_path)
    upgrade(url, "0001_foundation")
    old = CliRunner().invoke(cli, ["db", "current"])
    assert old.exit_code == 3 and json.loads(old.stdout)["up_to_date"] is False
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    current = CliRunner().invoke(cli, ["db", "current"])
    assert current.exit_code == 0 and json.loads(current.stdout)["database"] == json.loads(current.stdout)["release"]


def test_a_restored_backup_verifies_and_forgets_what_came_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rollback path docs/operations.md promises: back up, change things, restore, verify."""
    live, backup = tmp_path / "idsvc.db", tmp_path / "backup.db"
    url = f"sqlite:///{live}"
    upgrade(url)
    settings = Settings(database_url=url, data_dir=tmp_path, master_key="", _env_file=None)  # type: ignore[call-arg]
    ctx = AppContext.from_settings(settings)
    try:
        from tests.world import build_world

        world = build_world(ctx)
        with ctx.db.session() as s:
            kept = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])
        source, copy = sqlite3.connect(live), sqlite3.connect(backup)
        source.backup(copy)  # what `sqlite3 idsvc.db ".backup backup.db"` does, while the service runs
        source.close()
        copy.close()  # the last connection folds the copy's write-ahead log into the file
        with ctx.db.session() as s:
            lost = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])
    finally:
        ctx.close()
    shutil.copy(backup, live)
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    _env(monkeypatch, url, tmp_path)
    verified = CliRunner().invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True, verified.output
    restored = AppContext.from_settings(settings)
    try:
        from idsvc.passes.verify import PassVerifier

        verifier = PassVerifier(restored, refresh_seconds=0)
        door = world.ids["door1"]
        assert verifier.decide(door, kept.text, actor="test").allow
        assert verifier.decide(door, lost.text, actor="test").reasons == ["pass_unknown"]  # "re-issue them"
    finally:
        restored.close()
