"""docs/device-api.md is what a lock maker integrates from, alone: it stays inside the repository,
names every reason code a door can answer, and what it says works when followed to the letter
(the trust anchor, a dynamic code built by hand, the demo's devices)."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import re
import zlib
from pathlib import Path
from typing import Any

import base45
import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from idsvc.auth.principal import OPERATOR
from idsvc.cli import app
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.passes import issuing
from tests.conftest import REPO_ROOT
from tests.world import World

DOC = REPO_ROOT / "docs" / "device-api.md"
# Modules whose string codes end up in a door's answer (`reasons`) or a bridge upload's `rejected`.
REASON_SOURCES = ["passes/codec.py", "passes/claims.py", "passes/dynamic.py", "passes/verify.py", "passes/keys.py", "registry/access.py",
                  "revocation/denyset.py", "device_events/service.py", "device_events/plates.py"]
NOT_AT_A_DOOR = {
    "zlib_missing": "EU certificates only (pass inspect)",
    "key_unsupported": "loading a trusted key of another issuer (pass inspect)",
}


def test_the_device_api_stays_inside_the_repository() -> None:
    text = DOC.read_text()
    assert [u for u in re.findall(r"\]\(([^)]+)\)", text) if u.startswith(("http", ".."))] == []
    assert "../" not in text, "a path outside the repository"
    hosts = set(re.findall(r"https?://([^/\s`\"']+)", text))
    assert hosts <= {"idsvc.example"}, f"links outside the repository: {hosts}"


def _reason_codes() -> set[str]:
    """Codes the verify path answers: raised as CodecError, appended to reasons, returned as reasons
    lists, the registry's Reason constants, the deny set's and status tables, bridge upload rejections."""
    codes: set[str] = set()

    def constants(node: ast.AST) -> list[str]:
        return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]

    for module in REASON_SOURCES:
        tree = ast.parse((REPO_ROOT / "idsvc" / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in ("CodecError", "append") and node.args:
                    codes.update(constants(node.args[0]))  # a literal, or both arms of "a if ... else b"
            elif isinstance(node, ast.Return) and isinstance(node.value, ast.List):
                codes.update(constants(node.value))
            elif isinstance(node, ast.FunctionDef) and node.name == "refusal":
                codes.update(c for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None for c in constants(r.value))
            elif isinstance(node, ast.ClassDef) and node.name == "Reason":
                codes.update(c for item in node.body if isinstance(item, ast.Assign) for c in constants(item.value))
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) in ("_REASONS", "_STATUS_REASON") for t in node.targets):
                codes.update(c for value in getattr(node.value, "values", []) for c in constants(value))
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Subscript) and getattr(t.value, "attr", None) == "rejected" for t in node.targets):
                codes.update(constants(node.value))
    return {c for c in codes if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", c)}


def test_every_reason_a_door_can_give_is_documented() -> None:
    documented = set(re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`", DOC.read_text()))
    answered = _reason_codes()
    assert {"pass_revoked", "presentation_replayed", "no_grant_for_door", "door_not_of_device", "qr_not_found", "issuer_key_withdrawn",
            "base45_invalid", "subject_suspended"} <= answered  # the scan sees every kind of source
    missing = sorted(answered - documented - set(NOT_AT_A_DOOR))
    assert missing == [], "reason codes a door can answer that docs/device-api.md does not explain"


def test_the_trust_anchor_is_public_and_the_same_as_the_server_prints(client: TestClient, ctx: AppContext, monkeypatch: Any, tmp_path: Path) -> None:
    anchor = client.get("/v1/trust-anchor")
    assert anchor.status_code == 200 and set(anchor.json()) == {"kid", "alg", "root_public_key", "sha256"}
    der = base64.b64decode(anchor.json()["root_public_key"])
    assert hashlib.sha256(der).hexdigest() == anchor.json()["sha256"]
    assert client.get("/v1/trust-anchor").json() == anchor.json()  # stable: what a bridge pins
    for name, value in (("IDSVC_DATABASE_URL", ctx.settings.database_url), ("IDSVC_DATA_DIR", str(ctx.settings.data_dir)),
                        ("IDSVC_REDIS_URL", ""), ("IDSVC_MASTER_KEY", "")):
        monkeypatch.setenv(name, value)
    printed = CliRunner().invoke(app, ["pass", "root-key"])
    assert printed.exit_code == 0 and json.loads(printed.stdout) == anchor.json()
    from door_firmware_bridge.cli import app as bridge

    config = tmp_path / "site.toml"
    config.write_text(f'site = "s1"\n[service]\nurl = "http://svc"\ndevice_key = "k"\n[offline]\nroot_public_key = "{anchor.json()["root_public_key"]}"\n'
                      f'cache_dir = "{tmp_path}/cache"\n[journal]\npath = "{tmp_path}/journal.db"\n[[doors]]\nname = "d1"\ndoor_id = 1\nsite_id = 1\n')
    checked = CliRunner().invoke(bridge, ["check-config", "-c", str(config), "--no-network"])
    assert checked.exit_code == 0, checked.output
    assert f"root key sha256 {anchor.json()['sha256']}" in checked.stdout


def test_a_dynamic_code_built_from_the_docs_alone_opens_the_door(ctx: AppContext, client: TestClient, world: World) -> None:
    """No idsvc code on the phone's side: the encoding exactly as docs/device-api.md states it."""
    phone = Ed25519PrivateKey.generate()
    raw = phone.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    unpadded = base64.urlsafe_b64encode(raw).decode().rstrip("=")  # "with or without = padding"
    issued = client.post(f"/v1/people/{world.ids['tenant1']}/passes", headers=world.auth("district"), json={"holder_public_key": unpadded})
    assert issued.status_code == 201, issued.text
    data = base45.b45decode(issued.json()["qr_text"].removeprefix("NH1:"))
    pass_bytes = zlib.decompress(data) if data[:1] == b"\x78" else data  # "recognises it by the first byte 0x78"
    door, challenge = world.ids["door1"], b"\x01reader-nonce"
    step = int(utcnow().timestamp()) // 30
    signed = cbor2.dumps(["NH1-presentation", hashlib.sha256(pass_bytes).digest(), step, door, challenge])
    body = cbor2.dumps([pass_bytes, step, door, challenge, phone.sign(signed)])
    packed = zlib.compress(body, 9)
    code = "NH1:" + base45.b45encode(packed if len(packed) < len(body) else body).decode()
    challenge_text = base64.urlsafe_b64encode(challenge).decode()  # padded this time
    answer = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": door, "qr_text": code, "challenge": challenge_text})
    assert answer.json()["decision"] == "allow", answer.json()
    again = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": door, "qr_text": code, "challenge": challenge_text})
    assert again.json()["reasons"] == ["presentation_replayed"]


def test_the_demo_devices_do_what_the_docs_table_says(ctx: AppContext, client: TestClient) -> None:
    from idsvc.demo import seed_demo

    demo = seed_demo(ctx)
    with ctx.db.session() as s:
        qr_text = issuing.issue(s, ctx.sealer, OPERATOR, demo["people"]["tenant"]).text  # type: ignore[index]
    table = DOC.read_text().split("## Trying it on the demo", 1)[1]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)`: [^|]+\| (allow|deny `(\w+)`)", table, re.MULTILINE)
    assert len(rows) == 3
    for device, door, verdict, reason in rows:
        key = {"Authorization": f"Bearer {demo['keys'][device]}"}  # type: ignore[index]
        answer = client.post("/v1/device/verify", headers=key, json={"door_id": demo["doors"][door], "qr_text": qr_text}).json()  # type: ignore[index]
        assert answer["decision"] == ("allow" if verdict == "allow" else "deny"), (device, answer)
        if reason:
            assert answer["reasons"] == [reason], (device, answer)
