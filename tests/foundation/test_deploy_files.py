"""No Docker engine runs here: check that the deployment files parse, and run outside Docker each
command they run (idsvc and door-bridge commands, the Mosquitto entrypoint with its logins and ACLs,
Redis with the compose file's arguments, the health checks)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from typer.testing import CliRunner

from door_firmware_bridge.cli import app as bridge_app
from idsvc.cli import app
from tests.conftest import REPO_ROOT
from tests.prerequisites import missing

DOCKER = REPO_ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, what: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not listen on {port}")
        time.sleep(0.1)


def _command_exists(words: list[str]) -> bool:
    """`idsvc models install` exists when `idsvc models install --help` succeeds (door-bridge alike)."""
    cli = {"idsvc": app, "door-bridge": bridge_app}[words[0]]
    path = []
    for word in words[1:]:
        if word.startswith("-"):
            break
        path.append(word)
    return CliRunner().invoke(cli, [*path, "--help"]).exit_code == 0


def _dockerfile_commands(text: str) -> list[list[str]]:
    commands = []
    for line in (m.strip() for m in text.replace("\\\n", " ").splitlines()):
        for instruction in ("RUN ", "CMD "):
            if line.startswith(instruction):
                body = line[len(instruction):].strip()
                commands.append(json.loads(body) if body.startswith("[") else shlex.split(body))
    return commands


def test_the_image_holds_the_service_and_the_bridge() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    commands = _dockerfile_commands(text)
    ours = [c for c in commands if c[0] in ("idsvc", "door-bridge")]
    assert ["idsvc", "models", "install"] in ours and ["idsvc", "serve"] in ours and ["door-bridge", "--version"] in ours
    for words in ours:
        assert _command_exists(words), words
    assert "COPY door_firmware_bridge ./door_firmware_bridge" in text
    for copied in (line.split()[1] for line in text.splitlines() if line.startswith("COPY ")):
        assert (REPO_ROOT / copied).exists(), copied
    assert "USER idsvc" in text and "/healthz" in text


def test_compose_wires_the_service_to_postgres_redis_and_an_authenticated_broker() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"idsvc", "postgres", "redis", "mosquitto", "door-bridge"}
    env = services["idsvc"]["environment"]
    assert env["IDSVC_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env["IDSVC_DATABASE_URL"]
    assert env["IDSVC_REDIS_URL"].startswith("redis://redis:")
    assert "IDSVC_MASTER_KEY" in env and services["idsvc"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["idsvc"]["build"]["dockerfile"] == "docker/Dockerfile" and services["door-bridge"]["build"]["dockerfile"] == "docker/Dockerfile"
    for name, service in services.items():  # nothing listens on every interface of the host
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    broker = services["mosquitto"]
    assert "no-auth" not in json.dumps(broker) and ":?" in broker["environment"]["MQTT_BRIDGES"]  # no broker without logins
    assert services["door-bridge"]["profiles"] == ["site"]
    assert _command_exists(services["door-bridge"]["command"])


def test_the_bridge_config_of_the_compose_file_checks(tmp_path: Path) -> None:
    volume = next(v for v in COMPOSE["services"]["door-bridge"]["volumes"] if v.endswith(":/etc/door-bridge:ro"))
    config = DOCKER / volume.split(":")[0].removeprefix("./") / "site.toml"
    checked = CliRunner().invoke(bridge_app, ["check-config", "-c", str(config), "--no-network"])  # the file; no service or broker here
    assert checked.exit_code == 0, checked.output
    text = config.read_text()
    assert 'username = "bridge-demo-village"' in text and 'site = "demo-village"' in text  # the login the broker's entrypoint makes


def test_redis_takes_the_compose_files_arguments_and_answers_its_health_check(tmp_path: Path) -> None:
    redis = COMPOSE["services"]["redis"]
    if shutil.which(redis["command"][0]) is None:
        missing("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen([*redis["command"], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, "redis-server")
        check = redis["healthcheck"]["test"][1:]  # ["CMD", "redis-cli", "ping"]
        answer = subprocess.run([*check[:1], "-p", str(port), *check[1:]], check=False, capture_output=True, text=True, timeout=10)
        assert answer.stdout.strip() == "PONG"
        policy = subprocess.run(["redis-cli", "-p", str(port), "config", "get", "maxmemory-policy"], check=False, capture_output=True, text=True, timeout=10)
        assert "noeviction" in policy.stdout  # docs/operations.md: an evicted replay marker would let a code in twice
    finally:
        process.kill()
        process.wait(10)


def test_the_postgres_health_check_runs() -> None:
    test = COMPOSE["services"]["postgres"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    if shutil.which("pg_isready") is None:
        missing("pg_isready is not installed")
    # The machine's own PostgreSQL stands in for the container's (only the host differs).
    result = subprocess.run([*shlex.split(test[1]), "-h", "127.0.0.1"], check=False, capture_output=True, text=True, timeout=10)
    if "no response" in result.stdout:
        missing("no PostgreSQL on this machine to answer the check")
    assert result.returncode == 0 and "accepting connections" in result.stdout, result.stdout + result.stderr


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    """docker/mosquitto/entrypoint.sh as compose runs it, on a free port of this machine."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        missing("mosquitto is not installed (apt-get install -y mosquitto)")
    port = _free_port()
    run_dir = tmp_path / "run"
    # The image's paths and port are this machine's here; as root outside the image, mosquitto keeps root.
    conf = (DOCKER / "mosquitto" / "mosquitto.conf").read_text().replace("/mosquitto/run", str(run_dir))
    conf = conf.replace("\nlistener 1883\n", f"\nlistener {port} 127.0.0.1\n") + ("user root\n" if os.geteuid() == 0 else "")
    (tmp_path / "mosquitto.conf").write_text(conf)
    env = {**os.environ, "MOSQUITTO_CONFIG": str(tmp_path / "mosquitto.conf"), "MOSQUITTO_RUN_DIR": str(run_dir),
           "MQTT_BRIDGES": "park-1:bridge-secret,north:north-secret", "MQTT_LOCKS": "park-1/flat-101:lock-secret",
           "MQTT_BRIDGE_TOPICS": "park-1:nuki/3A4B5C/#"}
    process = subprocess.Popen(["sh", str(DOCKER / "mosquitto" / "entrypoint.sh")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_port(port, "mosquitto")
        assert oct((run_dir / "passwd").stat().st_mode & 0o777) == "0o600"
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _client(port: int, user: str | None, password: str | None) -> tuple[mqtt.Client, list[str], Any]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    received: list[str] = []
    client.on_message = lambda _c, _u, message: received.append(message.topic)
    result: dict[str, Any] = {}
    client.on_connect = lambda _c, _u, _f, reason, _p: result.setdefault("reason", reason)
    client.connect("127.0.0.1", port)
    client.loop_start()
    deadline = time.monotonic() + 5
    while "reason" not in result and time.monotonic() < deadline:
        time.sleep(0.02)
    return client, received, result.get("reason")


def test_the_broker_needs_a_login_and_keeps_each_bridge_to_its_site(broker: int) -> None:
    anonymous, _, reason = _client(broker, None, None)
    assert reason is not None and reason.is_failure, "anonymous clients must be refused"
    anonymous.loop_stop()
    wrong, _, reason = _client(broker, "bridge-park-1", "guess")
    assert reason is not None and reason.is_failure
    wrong.loop_stop()

    park, park_seen, reason = _client(broker, "bridge-park-1", "bridge-secret")
    north, north_seen, _ = _client(broker, "bridge-north", "north-secret")
    lock, lock_seen, _ = _client(broker, "lock-park-1-flat-101", "lock-secret")
    try:
        assert reason is not None and not reason.is_failure
        park.subscribe([("acs/v1/park-1/#", 1), ("nuki/3A4B5C/#", 1)])
        north.subscribe("acs/v1/#", qos=1)  # asks for every site: gets only what its ACL allows
        lock.subscribe([("acs/v1/park-1/flat-101/cmd", 1), ("acs/v1/park-1/flat-101/ack", 1)])
        time.sleep(0.3)
        park.publish("acs/v1/park-1/flat-101/cmd", b"{}", qos=1).wait_for_publish(5)
        lock.publish("acs/v1/park-1/flat-101/ack", b"{}", qos=1).wait_for_publish(5)
        lock.publish("acs/v1/park-1/other-door/cmd", b"{}", qos=1).wait_for_publish(5)   # a lock may not command
        lock.publish("acs/v1/park-1/flat-101/cmd", b"{}", qos=1).wait_for_publish(5)     # not even its own door
        park.publish("nuki/3A4B5C/lockAction", b"3", qos=1).wait_for_publish(5)
        north.publish("acs/v1/park-1/flat-101/cmd", b"{}", qos=1).wait_for_publish(5)    # another site's bridge may not
        time.sleep(0.5)
        assert sorted(park_seen) == ["acs/v1/park-1/flat-101/ack", "acs/v1/park-1/flat-101/cmd", "nuki/3A4B5C/lockAction"]
        assert lock_seen == ["acs/v1/park-1/flat-101/cmd"]  # the bridge's command only; it cannot read acks
        assert north_seen == []
    finally:
        for client in (park, north, lock):
            client.loop_stop()
            client.disconnect()


def test_the_broker_refuses_to_start_without_logins(tmp_path: Path) -> None:
    if shutil.which("mosquitto_passwd") is None:
        missing("mosquitto is not installed (apt-get install -y mosquitto)")
    env = {k: v for k, v in os.environ.items() if k != "MQTT_BRIDGES"} | {"MOSQUITTO_RUN_DIR": str(tmp_path / "run")}
    result = subprocess.run(["sh", str(DOCKER / "mosquitto" / "entrypoint.sh")], check=False, env=env, capture_output=True, text=True, timeout=10)
    assert result.returncode != 0 and "MQTT_BRIDGES" in result.stderr
    bad = subprocess.run(["sh", str(DOCKER / "mosquitto" / "entrypoint.sh")], check=False, env=env | {"MQTT_BRIDGES": "Park 1:x"}, capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "not a site topic segment" in bad.stderr
