"""The README's walk-through, run as it is written (extracted from README.md, so the two cannot drift)
against a real `idsvc serve --demo` process, twice in a row; and the operator CLI."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from idsvc.context import AppContext
from tests.conftest import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    api: str
    env: dict[str, str]
    home: Path  # the walk-through's working directory: var/ (the data dir) and .venv/bin/idsvc


@pytest.fixture
def server(ctx: AppContext, tmp_path: Path) -> Iterator[Server]:
    """A service process on an empty database of this test run (SQLite or PostgreSQL), with its own
    Redis key prefix (removed afterwards): never the production prefix of the shared Redis."""
    port = _free_port()
    prefix = f"idsvc-walkthrough-{secrets.token_hex(4)}:"
    env = {
        **os.environ,
        "IDSVC_DATA_DIR": str(tmp_path / "var"),
        "IDSVC_DATABASE_URL": ctx.db.url,
        "IDSVC_REDIS_URL": ctx.settings.redis_url,
        "IDSVC_REDIS_PREFIX": prefix,
        "IDSVC_MASTER_KEY": "",
        "API": f"http://127.0.0.1:{port}/v1",
    }
    # The README runs `.venv/bin/idsvc` from the repository root; here the same command runs this interpreter's idsvc.
    launcher = tmp_path / ".venv" / "bin" / "idsvc"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m idsvc "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    process = subprocess.Popen(
        [sys.executable, "-m", "idsvc", "serve", "--demo", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"idsvc serve did not come up:\n{output}")
            time.sleep(0.2)
        yield Server(env["API"], env, tmp_path)
    finally:
        process.terminate()
        process.wait(timeout=15)
        print(process.stdout.read() if process.stdout else "")
        if ctx.settings.redis_url:
            client = redis.Redis.from_url(ctx.settings.redis_url)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()


def walkthrough_steps() -> list[tuple[str, str]]:
    """(comment, commands) of the README's walk-through block, in order, as written."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## A five-minute walk-through", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert found, "the walk-through's ```sh block is missing from README.md"
    steps: list[tuple[str, list[str]]] = []
    for line in found.group(1).splitlines():
        if line.startswith("# "):
            steps.append((line[2:], [line]))
        else:
            assert steps, "the walk-through starts with a comment saying what its first commands do"
            steps[-1][1].append(line)
    return [(comment, "\n".join(lines)) for comment, lines in steps]


def _values(text: str) -> list[Any]:
    """The JSON answers a step printed one after another (curl prints no newline between them)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def _run(server: Server) -> dict[str, tuple[list[Any], Path]]:
    steps = walkthrough_steps()
    marker = f"@@{secrets.token_hex(8)}@@"
    script = "\n".join(f"printf '\\n{marker}\\n'\n{commands}" for _, commands in steps)
    done = subprocess.run(["bash", "-c", script], check=False, cwd=server.home, env=server.env, capture_output=True, text=True, timeout=180)
    outputs = done.stdout.split(marker)[1:]
    assert len(outputs) == len(steps), f"the walk-through stopped early:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return {comment: (_values(output), server.home) for (comment, _), output in zip(steps, outputs, strict=True)}


def _demo(server: Server) -> dict[str, Any]:
    return json.loads((server.home / "var" / "demo-keys.json").read_text())  # type: ignore[no-any-return]


def _check_walkthrough(server: Server) -> None:
    demo = _demo(server)
    answers = _run(server)
    checks: dict[str, Callable[[list[Any]], None]] = {}

    def step(prefix: str) -> Callable[[Callable[[list[Any]], None]], None]:
        def register(check: Callable[[list[Any]], None]) -> None:
            checks[prefix] = check

        return register

    @step("The demo's ids and keys")
    def _(values: list[Any]) -> None:
        assert values == []

    @step("Who am I?")
    def _(values: list[Any]) -> None:
        assert values[0]["role"] == "owner" and values[0]["person_id"] == demo["people"]["owner"]

    @step("The landlord's units")
    def _(values: list[Any]) -> None:
        assert [u["code"] for u in values[0]] == [demo["unit_code"]] and values[0][0]["door_group_id"] is not None

    @step("The landlord registers a new tenant")
    def _(values: list[Any]) -> None:
        (tenancy,) = values
        assert tenancy["unit_id"] == demo["unit_id"] and tenancy["status"] == "active", tenancy

    @step("May they pass the flat door now?")
    def _(values: list[Any]) -> None:
        assert values[0]["allowed"] is False and values[0]["reasons"] == ["grant_not_yet_valid"], values

    @step("... and in two weeks?")
    def _(values: list[Any]) -> None:
        assert values[0]["allowed"] is True and values[0]["reasons"] == [], values

    @step("The landlord takes them off again")
    def _(values: list[Any]) -> None:
        assert [g["status"] for g in values[0]] == ["revoked"], values

    @step("Bad input is a 4xx")
    def _(values: list[Any]) -> None:
        assert values[0]["error"]["code"] == "invalid_input" and values[0]["error"]["details"], values

    @step("A unit that is not the landlord's")
    def _(values: list[Any]) -> None:
        assert values[0]["error"]["code"] == "unit_not_found", values

    @step("The landlord issues the demo tenant a signed pass")
    def _(values: list[Any]) -> None:
        assert values == [] and (server.home / "pass.png").read_bytes().startswith(b"\x89PNG")

    @step("The flat's smart lock asks whether to open")
    def _(values: list[Any]) -> None:
        assert values[0]["decision"] == "allow" and values[0]["reasons"] == [], values

    @step("The landlord revokes the pass")
    def _(values: list[Any]) -> None:
        revoked, refused = values
        assert revoked["status"] == "revoked", revoked
        assert refused["decision"] == "deny" and "pass_revoked" in refused["reasons"], refused

    @step("Any QR, ours or an EU health certificate")
    def _(values: list[Any]) -> None:
        report = values[0]
        status = next(layer for layer in report["layers"] if layer["layer"] == "status")
        assert report["result"] == "failed" and status["reasons"] == ["pass_revoked"], report

    @step("Everything above is in the hash-chained audit trail")
    def _(values: list[Any]) -> None:
        events, verified = values
        kinds = [e["kind"] for e in events["events"]]
        assert kinds.count("tenancy.ended") >= 1 and kinds.count("tenancy.started") >= 2, kinds
        assert (server.home / "audit.csv").read_text().splitlines()[0].startswith("seq,at,kind")
        assert verified["ok"] is True, verified

    unchecked = [comment for comment in answers if not any(comment.startswith(prefix) for prefix in checks)]
    assert unchecked == [], "a new walk-through step needs its check here"
    for prefix, check in checks.items():
        matching = [comment for comment in answers if comment.startswith(prefix)]
        assert len(matching) == 1, f"no (or several) walk-through steps start with {prefix!r}"
        check(answers[matching[0]][0])


def test_readme_walkthrough_runs_as_written_twice(server: Server) -> None:
    assert oct((server.home / "var" / "demo-keys.json").stat().st_mode & 0o777) == "0o600"
    _check_walkthrough(server)
    _check_walkthrough(server)  # on the data the first run left: nothing in it is fixed


def test_operator_cli_creates_and_refuses_with_a_named_fix(ctx: AppContext, tmp_path: Path) -> None:
    """In-process (the entry point itself runs as a real process in the walk-through above)."""
    from typer.testing import CliRunner

    from idsvc.cli import app

    env = {"IDSVC_DATA_DIR": str(tmp_path), "IDSVC_DATABASE_URL": ctx.db.url, "IDSVC_REDIS_URL": ctx.settings.redis_url,
           "IDSVC_REDIS_PREFIX": ctx.settings.redis_prefix}  # the run's own prefix (cleared at its end), never idsvc:
    runner = CliRunner()

    def idsvc(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), env=env)

    created = idsvc("site", "create", "second-park", "Second Park", "--timezone", "Asia/Shanghai")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["code"] == "second-park"

    duplicate = idsvc("site", "create", "second-park", "Again")
    assert duplicate.exit_code == 1 and "duplicate_code" in duplicate.stderr and "Traceback" not in duplicate.output

    bad_zone = idsvc("site", "create", "third", "Third", "--timezone", "Mars/Olympus")
    assert bad_zone.exit_code == 1 and "timezone" in bad_zone.stderr

    naive = idsvc("grant", "tenant", "--unit", "1", "--person", "2", "--until", "2027-01-01")
    assert naive.exit_code == 1 and "2026-12-01T00:00:00+08:00" in naive.stderr

    missing_unit = idsvc("grant", "tenant", "--unit", "999", "--person", "2", "--until", "2027-01-01T00:00:00+08:00")
    assert missing_unit.exit_code == 1 and "unit_not_found" in missing_unit.stderr

    key = idsvc("key", "create", "--role", "district_admin", "--label", "ops")
    assert key.exit_code == 0 and json.loads(key.stdout)["token"].startswith("idsvc_")
