"""`idsvc revoke|suspend|reinstate ...` and `idsvc sync ...` end to end through Typer."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idsvc.auth.principal import OPERATOR
from idsvc.cli import app
from idsvc.context import AppContext
from idsvc.passes import issuing, keys
from idsvc.registry.models import Person
from idsvc.sync import feed
from idsvc.sync.verify import REVOKED, apply, root_key
from tests.world import World

runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_env(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSVC_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("IDSVC_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("IDSVC_REDIS_URL", ctx.settings.redis_url)
    monkeypatch.setenv("IDSVC_REDIS_PREFIX", ctx.settings.redis_prefix)
    monkeypatch.setenv("IDSVC_MASTER_KEY", "")


def _invoke(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_revoke_a_person_from_the_command_line(ctx: AppContext, world: World, uses_redis: bool) -> None:
    tenant = world.ids["tenant1"]
    with ctx.db.session() as s:
        issued = issuing.issue(s, ctx.sealer, OPERATOR, tenant)
    out = _invoke("revoke", "person", str(tenant), "--reason", "moved out")
    assert out["status"] == "revoked" and out["cascade"]["passes_revoked"] == 1
    with ctx.db.session() as s:
        assert s.get(Person, tenant).status.value == "revoked"
    if uses_redis:  # the CLI is another process as far as the service is concerned: the notice reaches it
        deadline = time.monotonic() + 5
        while not ctx.deny.reasons(pass_id=bytes.fromhex(issued.row.pass_id)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ctx.deny.reasons(pass_id=bytes.fromhex(issued.row.pass_id)) == ["pass_revoked"]
    refused = runner.invoke(app, ["suspend", "person", str(tenant), "--reason", "x"])
    assert refused.exit_code == 1 and "invalid_transition" in refused.output
    assert _invoke("reinstate", "person", str(tenant), "--reason", "back")["status"] == "active"


def test_withdraw_key_and_grant_verbs(ctx: AppContext, world: World) -> None:
    with ctx.db.session() as s:
        kid = keys.active_issuer_key(s, ctx.sealer).kid
    assert _invoke("suspend", "grant", str(world.ids["grant1"]), "--reason", "check")["status"] == "suspended"
    assert _invoke("revoke", "issuer-key", kid, "--reason", "leaked")["status"] == "withdrawn"


def test_feed_file_face_key_and_prune(ctx: AppContext, world: World, tmp_path: Path) -> None:
    site = world.ids["site_a"]
    with ctx.db.session() as s:
        issued = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])
        root = root_key(keys.root_public_key(s).public_der)  # type: ignore[union-attr]
    out = _invoke("sync", "feed", "--site", str(site), "--out", str(tmp_path / "feed.cose"))
    state = apply(None, (tmp_path / "feed.cose").read_bytes(), root, site_id=site)
    assert state.version == out["version"]
    _invoke("revoke", "pass", str(issued.row.id), "--reason", "lost")
    _invoke("sync", "feed", "--site", str(site), "--since", str(state.version), "--out", str(tmp_path / "delta.cose"))
    state = apply(state, (tmp_path / "delta.cose").read_bytes(), root, site_id=site)
    assert state.pass_status(bytes.fromhex(issued.row.pass_id), b"", 0) == REVOKED
    key = base64.b64decode(_invoke("sync", "face-key", "--site", str(site))["face_key"])
    with ctx.db.session() as s:
        assert len(key) == 32 and feed.site_face_key(s, ctx.sealer, site) == key
    assert _invoke("sync", "prune", "--days", "1")["deleted"] == 0  # nothing that old yet
    with ctx.db.session() as s:  # once pruned, a bridge that far behind gets a full snapshot
        feed.prune(s, state.version)
        _, document = feed.build(s, ctx.sealer, ctx.bus, ctx.settings, site, since=1)
    assert apply(None, document, root, site_id=site).version == state.version
