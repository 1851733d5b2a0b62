"""No Docker engine runs here: check that the deployment files parse and that every idsvc command
they run exists (the commands themselves run in other tests outside Docker)."""

from __future__ import annotations

import json
import re
import shlex

import yaml
from typer.testing import CliRunner

from idsvc.cli import app
from tests.conftest import REPO_ROOT


def _command_exists(words: list[str]) -> bool:
    """`idsvc models install` exists when `idsvc models install --help` succeeds."""
    path = [w for w in words[1:] if not w.startswith("-")]
    return CliRunner().invoke(app, [*path, "--help"]).exit_code == 0


def _idsvc_commands(text: str) -> list[list[str]]:
    commands = []
    for match in re.finditer(r"^(?:RUN|CMD)\s+(.+)$", text, re.MULTILINE):
        line = match.group(1).strip()
        if not line.lstrip('["').startswith("idsvc"):
            continue
        words = json.loads(line) if line.startswith("[") else shlex.split(line)
        commands.append(words)
    return commands


def test_dockerfile_runs_only_existing_commands() -> None:
    text = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    commands = _idsvc_commands(text)
    assert ["idsvc", "models", "install"] in commands and ["idsvc", "serve"] in commands
    for words in commands:
        assert _command_exists(words), words
    assert "USER idsvc" in text  # the service does not run as root
    assert "/healthz" in text


def test_compose_file_wires_the_service_to_postgres_redis_and_mosquitto() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"idsvc", "postgres", "redis", "mosquitto"}
    env = services["idsvc"]["environment"]
    assert env["IDSVC_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env["IDSVC_DATABASE_URL"]
    assert env["IDSVC_REDIS_URL"].startswith("redis://redis:")
    assert "IDSVC_MASTER_KEY" in env
    assert services["idsvc"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["idsvc"]["build"]["dockerfile"] == "docker/Dockerfile"
