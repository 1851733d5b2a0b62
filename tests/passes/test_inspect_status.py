"""`idsvc pass inspect --service-keys` and a lock's `POST /v1/device/verify` agree on the same passes:
valid, revoked, suspended, not on record, of a suspended holder, and signed by a withdrawn key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete
from typer.testing import CliRunner

from idsvc.auth.principal import OPERATOR
from idsvc.cli import app
from idsvc.context import AppContext
from idsvc.passes import issuing, keys
from idsvc.passes.models import Pass
from idsvc.registry.models import Status
from tests.world import World

# What the door's registry adds (the grant check); the inspector judges the pass, not a door.
DOOR_LEVEL = {"no_grant_for_door", "grant_not_yet_valid", "grant_expired", "grant_suspended", "grant_revoked", "outside_schedule",
              "uses_exhausted", "door_unknown", "door_inactive", "subject_other_site", "subject_unknown"}


@pytest.fixture
def cli_env(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSVC_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("IDSVC_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("IDSVC_REDIS_URL", ctx.settings.redis_url)
    monkeypatch.setenv("IDSVC_REDIS_PREFIX", ctx.settings.redis_prefix)
    monkeypatch.setenv("IDSVC_MASTER_KEY", "")


def _lock(client: TestClient, world: World, qr_text: str) -> dict[str, Any]:
    answer = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": qr_text})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _inspect(qr_text: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["pass", "inspect", qr_text, "--service-keys"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _agree(client: TestClient, world: World, qr_text: str) -> set[str]:
    """Both verdicts on one code; returns the reasons they share."""
    lock, report = _lock(client, world, qr_text), _inspect(qr_text)
    refused_by_inspector = {reason for layer in report["layers"] for reason in layer["reasons"]}
    assert set(lock["reasons"]) - DOOR_LEVEL == refused_by_inspector, (lock, report["layers"])
    assert (lock["decision"] == "allow") == (report["result"] == "ok"), (lock, report["result"])
    return refused_by_inspector


def test_inspect_and_the_lock_agree_on_every_status(cli_env: None, ctx: AppContext, client: TestClient, world: World) -> None:
    tenant = world.ids["tenant1"]
    with ctx.db.session() as s:
        issued = {name: issuing.issue(s, ctx.sealer, OPERATOR, tenant) for name in ("valid", "revoked", "suspended", "forgotten")}
    district = world.auth("district")
    for name, status in (("revoked", "revoked"), ("suspended", "suspended")):
        changed = client.post(f"/v1/passes/{issued[name].row.id}/status", headers=district, json={"status": status, "reason": "test"})
        assert changed.status_code == 200, changed.text
    with ctx.db.session() as s:  # a pass the database no longer knows (a restore from before it was issued)
        s.execute(delete(Pass).where(Pass.id == issued["forgotten"].row.id))

    assert _agree(client, world, issued["valid"].text) == set()
    assert _agree(client, world, issued["revoked"].text) == {"pass_revoked"}
    assert _agree(client, world, issued["suspended"].text) == {"pass_suspended"}
    assert _agree(client, world, issued["forgotten"].text) == {"pass_unknown"}

    assert client.post(f"/v1/people/{tenant}/suspend", headers=district, json={"reason": "test"}).status_code == 200
    assert _agree(client, world, issued["valid"].text) == {"subject_suspended"}
    assert client.post(f"/v1/people/{tenant}/reinstate", headers=district, json={"reason": "test"}).status_code == 200
    assert _agree(client, world, issued["valid"].text) == set()

    with ctx.db.session() as s:
        old_kid = issued["valid"].row.kid
        keys.rotate(s, ctx.sealer, OPERATOR)
    assert client.post(f"/v1/issuer-keys/{old_kid}/withdraw", headers=district, json={"reason": "leaked"}).status_code == 200
    assert _agree(client, world, issued["valid"].text) == {"issuer_key_withdrawn"}
    assert _agree(client, world, issued["revoked"].text) == {"issuer_key_withdrawn", "pass_revoked"}


def test_without_service_keys_inspect_says_what_it_did_not_check(ctx: AppContext, world: World) -> None:
    with ctx.db.session() as s:
        revoked = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])
        issuing.change_status(s, OPERATOR, revoked.row.id, Status.revoked, "lost")
    result = CliRunner().invoke(app, ["pass", "inspect", revoked.text])
    report = json.loads(result.stdout)
    assert report["result"] == "signature not checked"
    status = next(layer for layer in report["layers"] if layer["layer"] == "status")
    assert status["status"] == "skipped" and "--service-keys" in status["detail"]
