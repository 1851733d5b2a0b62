"""The README's walk-through, against a real `idsvc serve --demo` process and the operator CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from idsvc.context import AppContext


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(ctx: AppContext, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A service process on an empty database of this test run (SQLite or PostgreSQL)."""
    port = _free_port()
    env = {**os.environ, "IDSVC_DATA_DIR": str(tmp_path), "IDSVC_DATABASE_URL": ctx.db.url, "IDSVC_REDIS_URL": ctx.settings.redis_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "idsvc", "serve", "--demo", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"idsvc serve did not come up:\n{output}")
            time.sleep(0.2)
        yield base, env, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=15)
        print(process.stdout.read() if process.stdout else "")


def test_readme_walkthrough(server: tuple[str, dict[str, str], Path]) -> None:
    base, env, data_dir = server
    demo = json.loads((data_dir / "demo-keys.json").read_text())
    assert oct((data_dir / "demo-keys.json").stat().st_mode & 0o777) == "0o600"
    api = f"{base}/v1"
    owner = {"Authorization": f"Bearer {demo['keys']['owner']}"}
    admin = {"Authorization": f"Bearer {demo['keys']['site_admin']}"}
    flat_door = demo["doors"]["flat"]

    me = httpx.get(f"{api}/me", headers=owner).json()
    assert me["role"] == "owner" and me["person_id"] == demo["people"]["owner"]

    units = httpx.get(f"{api}/units", headers=owner).json()
    assert [u["code"] for u in units] == [demo["unit_code"]]
    assert units[0]["door_group_id"] is not None

    person = httpx.post(f"{api}/people", headers=owner, json={"site_id": demo["site_id"], "display_name": "Tenant Zhao", "kind": "tenant"})
    assert person.status_code == 201, person.text
    pid = person.json()["id"]
    tenancy = httpx.post(
        f"{api}/units/{demo['unit_id']}/tenants",
        headers=owner,
        json={"person_id": pid, "valid_from": "2020-12-01T00:00:00+08:00", "valid_until": "2020-12-31T00:00:00+08:00"},
    )
    assert tenancy.status_code == 201, tenancy.text

    now = httpx.post(f"{api}/access/check", headers=admin, json={"door_id": flat_door, "person_id": pid}).json()
    assert now["allowed"] is False and now["reasons"] == ["grant_expired"]
    during = httpx.post(f"{api}/access/check", headers=admin, json={"door_id": flat_door, "person_id": pid, "at": "2020-12-15T20:00:00+08:00"}).json()
    assert during["allowed"] is True

    ended = httpx.delete(f"{api}/units/{demo['unit_id']}/tenants/{pid}", headers=owner, params={"reason": "moved out"})
    assert ended.status_code == 200 and ended.json()[0]["status"] == "revoked"

    bad = httpx.post(
        f"{api}/units/{demo['unit_id']}/tenants",
        headers=owner,
        json={"person_id": pid, "valid_from": "2027-01-01T00:00:00+08:00", "valid_until": "2026-12-01T00:00:00+08:00"},
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    assert httpx.get(f"{api}/units/99", headers=owner).json()["error"]["code"] == "unit_not_found"

    issued = httpx.post(f"{api}/people/{demo['people']['tenant']}/passes", headers=owner, json={})
    assert issued.status_code == 201, issued.text
    qr_text, pass_id = issued.json()["qr_text"], issued.json()["id"]
    picture = httpx.get(f"{api}/passes/{pass_id}/qr.png", headers=owner)
    assert picture.headers["content-type"] == "image/png" and picture.content.startswith(b"\x89PNG")
    lock = {"Authorization": f"Bearer {demo['keys']['lock']}"}
    opened = httpx.post(f"{api}/device/verify", headers=lock, json={"door_id": flat_door, "qr_text": qr_text}).json()
    assert opened["decision"] == "allow" and opened["reasons"] == [], opened
    revoked = httpx.post(f"{api}/passes/{pass_id}/status", headers=owner, json={"status": "revoked", "reason": "lost phone"})
    assert revoked.status_code == 200, revoked.text
    refused = httpx.post(f"{api}/device/verify", headers=lock, json={"door_id": flat_door, "qr_text": qr_text}).json()
    assert refused["decision"] == "deny" and "pass_revoked" in refused["reasons"], refused

    kinds = [e["kind"] for e in httpx.get(f"{api}/audit/events", headers=owner, params={"kind": "tenancy."}).json()["events"]]
    assert kinds == ["tenancy.started", "tenancy.started", "tenancy.ended"]
    csv_text = httpx.get(f"{api}/audit/events.csv", headers=admin).text
    assert csv_text.splitlines()[0].startswith("seq,at,kind")

    verify = subprocess.run([sys.executable, "-m", "idsvc", "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True


def test_operator_cli_creates_and_refuses_with_a_named_fix(ctx: AppContext, tmp_path: Path) -> None:
    """In-process (the entry point itself runs as a real process in the walk-through above)."""
    from typer.testing import CliRunner

    from idsvc.cli import app

    env = {"IDSVC_DATA_DIR": str(tmp_path), "IDSVC_DATABASE_URL": ctx.db.url, "IDSVC_REDIS_URL": ctx.settings.redis_url}
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
