"""`idsvc pass ...` end to end through Typer: inspect (text, picture, trusted key), issue, revoke."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from typer.testing import CliRunner

from idsvc.cli import app
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.passes import dynamic, issuing, qr
from idsvc.passes.models import IssuerKey
from idsvc.passes.verify import PassVerifier
from tests.world import World

runner = CliRunner()


@pytest.fixture
def cli_env(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI at the test database and key file."""
    monkeypatch.setenv("IDSVC_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("IDSVC_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("IDSVC_REDIS_URL", ctx.settings.redis_url)
    monkeypatch.setenv("IDSVC_REDIS_PREFIX", ctx.settings.redis_prefix)
    monkeypatch.setenv("IDSVC_MASTER_KEY", "")


def _layers(output: str) -> dict[str, str]:
    return {layer["layer"]: layer["status"] for layer in json.loads(output)["layers"]}


def test_inspect_own_pass_with_its_public_key(ctx: AppContext, tenant_pass: issuing.IssuedPass, tmp_path: Path) -> None:
    with ctx.db.session() as s:
        der = s.scalars(select(IssuerKey.public_der).where(IssuerKey.kid == tenant_pass.row.kid)).one()
    key_file = tmp_path / "issuer.pem"
    key_file.write_bytes(serialization.load_der_public_key(der).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = runner.invoke(app, ["pass", "inspect", tenant_pass.text, "--key", str(key_file)])
    assert result.exit_code == 0, result.output
    layers = {"picture": "skipped", "prefix": "ok", "base45": "ok", "zlib": "ok", "cose": "ok", "cbor": "ok", "expiry": "ok", "status": "skipped"}
    assert _layers(result.output) == layers
    assert json.loads(result.output)["result"] == "status not checked"  # a key file alone cannot tell a revoked pass
    expired = runner.invoke(app, ["pass", "inspect", tenant_pass.text, "--key", str(key_file), "--at", "2099-01-01T00:00:00Z"])
    assert expired.exit_code == 1 and _layers(expired.output)["expiry"] == "failed"


def test_inspect_picture_without_a_key_skips_the_signature(tenant_pass: issuing.IssuedPass, tmp_path: Path) -> None:
    picture = tmp_path / "pass.png"
    picture.write_bytes(qr.render_png(tenant_pass.text))
    result = runner.invoke(app, ["pass", "inspect", str(picture)])
    assert result.exit_code == 0, result.output
    layers = _layers(result.output)
    assert layers["picture"] == "ok" and layers["cose"] == "skipped" and layers["cbor"] == "ok"
    assert json.loads(result.output)["result"] == "signature not checked"  # never a bare "ok" without a key


def test_inspect_wrong_prefix_and_bad_at(tenant_pass: issuing.IssuedPass) -> None:
    result = runner.invoke(app, ["pass", "inspect", tenant_pass.text, "--prefix", "HC1"])
    assert result.exit_code == 1 and _layers(result.output)["prefix"] == "failed"
    assert runner.invoke(app, ["pass", "inspect", tenant_pass.text, "--at", "tomorrow"]).exit_code == 1


@pytest.mark.needs_shared
def test_inspect_eu_certificate_picture(shared_dir: Path, tmp_path: Path) -> None:
    vector = json.loads((shared_dir / "data/dcc/DE/1.json").read_text())
    (tmp_path / "qr.png").write_bytes(base64.b64decode(vector["2DCODE"]))
    (tmp_path / "dsc.der").write_bytes(base64.b64decode(vector["TESTCTX"]["CERTIFICATE"]))
    args = ["pass", "inspect", str(tmp_path / "qr.png"), "--prefix", "HC1", "--cert", str(tmp_path / "dsc.der"), "--at", vector["TESTCTX"]["VALIDATIONCLOCK"]]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    layers = _layers(result.output)
    assert layers.pop("status") == "skipped" and set(layers.values()) == {"ok"}  # no status of ours for an EU certificate
    assert json.loads(result.output)["result"] == "ok"
    without_prefix = runner.invoke(app, [a for a in args if a not in ("--prefix", "HC1")])
    assert json.loads(without_prefix.output)["prefix"] == "HC1:" and json.loads(without_prefix.output)["result"] == "ok"


def test_issue_list_revoke(cli_env: None, world: World, tmp_path: Path) -> None:
    tenant = str(world.ids["tenant1"])
    issued = runner.invoke(app, ["pass", "issue", "--person", tenant, "--png", str(tmp_path / "p.png")])
    assert issued.exit_code == 0, issued.output
    body = json.loads(issued.output)
    assert qr.decode_image((tmp_path / "p.png").read_bytes()) == [body["qr_text"]]
    listed = json.loads(runner.invoke(app, ["pass", "list", "--person", tenant]).output)
    assert [p["id"] for p in listed] == [body["id"]]
    revoked = runner.invoke(app, ["revoke", "pass", str(body["id"]), "--reason", "lost"])
    assert json.loads(revoked.output)["status"] == "revoked"


def test_inspect_dynamic_code_checks_the_phone_part_without_using_it_up(ctx: AppContext, world: World) -> None:
    phone = dynamic.Holder()
    with ctx.db.session() as s:
        bound = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"], holder_public_key=phone.public_key)
    shown = phone.present(bound.text, door_id=world.ids["door1"])
    header = json.loads(runner.invoke(app, ["pass", "inspect", shown]).output)["header"]
    assert header["presentation"] == "dynamic" and header["presentation_check"] == "ok"
    stale = json.loads(runner.invoke(app, ["pass", "inspect", shown, "--at", "2099-01-01T00:00:00Z"]).output)["header"]
    assert stale["presentation_check"] == ["presentation_stale"]
    assert PassVerifier(ctx).decide(world.ids["door1"], shown, actor="t").allow  # inspecting did not burn it


def test_root_key_prints_what_a_bridge_pins(cli_env: None) -> None:
    from door_firmware_bridge.offline import root_key

    first = runner.invoke(app, ["pass", "root-key"])
    assert first.exit_code == 0, first.output
    printed = json.loads(first.stdout)
    assert root_key(printed["root_public_key"]).kid.hex() == printed["kid"]
    assert json.loads(runner.invoke(app, ["pass", "root-key"]).stdout) == printed  # stable: the pinned key
