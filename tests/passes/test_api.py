"""The pass API: scoped issuing and listing, QR pictures, and the device verify call with bad input."""

from __future__ import annotations

import base64
import io
import zlib
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cwt import COSEKey
from fastapi.testclient import TestClient
from PIL import Image

from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.passes import codec, dynamic, keys, qr
from tests.tamper import signature_flipped
from tests.world import World


def _issue(client: TestClient, world: World, who: str, person: str, **body: Any) -> Any:
    return client.post(f"/v1/people/{world.ids[person]}/passes", json=body, headers=world.auth(who))


def _verify(client: TestClient, world: World, text: str, door: str = "door1", who: str = "device1") -> Any:
    return client.post("/v1/device/verify", json={"door_id": world.ids[door], "qr_text": text}, headers=world.auth(who))


def _error(response: Any) -> str:
    return response.json()["error"]["code"]  # type: ignore[no-any-return]


@pytest.fixture
def pass_text(client: TestClient, world: World) -> str:
    response = _issue(client, world, "owner1", "tenant1")
    assert response.status_code == 201, response.text
    return response.json()["qr_text"]  # type: ignore[no-any-return]


# --- issuing and listing, by role ----------------------------------------------------------------


@pytest.mark.parametrize("who", ["district", "admin_a", "owner1", "tenant1"])
def test_who_may_issue_for_tenant1(client: TestClient, world: World, who: str) -> None:
    assert _issue(client, world, who, "tenant1").status_code == 201


@pytest.mark.parametrize("who", ["admin_b", "owner2", "tenant2"])
def test_others_see_nothing(client: TestClient, world: World, who: str, pass_text: str) -> None:
    response = _issue(client, world, who, "tenant1")
    assert response.status_code == 404 and _error(response) == "person_not_found"
    assert client.get(f"/v1/people/{world.ids['tenant1']}/passes", headers=world.auth(who)).status_code == 404


def test_list_renew_revoke(client: TestClient, world: World, pass_text: str) -> None:
    auth = world.auth("owner1")
    listed = client.get(f"/v1/people/{world.ids['tenant1']}/passes", headers=auth).json()
    assert len(listed) == 1 and listed[0]["status"] == "active"
    pass_id = listed[0]["id"]
    renewed = client.post(f"/v1/passes/{pass_id}/renew", json={"lifetime_days": 3}, headers=auth)
    assert renewed.status_code == 201 and renewed.json()["renewed_from_id"] == pass_id
    assert _verify(client, world, pass_text).json()["allow"] is True
    revoked = client.post(f"/v1/passes/{pass_id}/status", json={"status": "revoked", "reason": "moved out"}, headers=auth)
    assert revoked.json()["status"] == "revoked"
    assert _verify(client, world, pass_text).json()["reasons"] == ["pass_revoked"]
    assert _verify(client, world, renewed.json()["qr_text"]).json()["allow"] is True
    revocations = client.get(f"/v1/people/{world.ids['tenant1']}/passes?status=revoked", headers=auth).json()
    assert [p["id"] for p in revocations] == [pass_id]


def test_tenant_may_revoke_but_not_reinstate(client: TestClient, world: World, pass_text: str) -> None:
    pass_id = client.get(f"/v1/people/{world.ids['tenant1']}/passes", headers=world.auth("tenant1")).json()[0]["id"]
    suspend = client.post(f"/v1/passes/{pass_id}/status", json={"status": "suspended", "reason": "x"}, headers=world.auth("tenant1"))
    assert suspend.status_code == 403 and _error(suspend) == "forbidden_role"


def test_pass_and_unit_qr_pictures(client: TestClient, world: World, pass_text: str) -> None:
    pass_id = client.get(f"/v1/people/{world.ids['tenant1']}/passes", headers=world.auth("tenant1")).json()[0]["id"]
    png = client.get(f"/v1/passes/{pass_id}/qr.png", headers=world.auth("tenant1"))
    assert png.headers["content-type"] == "image/png"
    assert qr.decode_image(png.content) == [pass_text]  # rebuilt byte for byte
    svg = client.get(f"/v1/passes/{pass_id}/qr.svg", headers=world.auth("tenant1"))
    assert svg.headers["content-type"] == "image/svg+xml" and svg.content.startswith(b"<svg")
    unit_png = client.get(f"/v1/units/{world.ids['unit1']}/qr.png", headers=world.auth("owner1"))
    assert qr.decode_image(unit_png.content)[0].startswith(qr.UNIT_PREFIX)
    assert client.get(f"/v1/units/{world.ids['unit1']}/qr.png", headers=world.auth("owner2")).status_code == 404


def test_trust_and_status_lists_are_signed(ctx: AppContext, client: TestClient, world: World, pass_text: str) -> None:
    trust = client.get("/v1/passes/trust-list", headers=world.auth("device1"))
    assert trust.headers["content-type"] == "application/cbor"
    message = codec.parse_sign1(trust.content)
    with ctx.db.session() as s:
        root = keys.root_public_key(s)
        assert root is not None
        codec.verify_signature(message, keys.verifying_key(root))
    body = cbor2.loads(message.payload)
    assert [k["status"] for k in body["keys"]] == ["active"]
    status_list = codec.parse_sign1(client.get("/v1/passes/status-list", headers=world.auth("device1")).content)
    assert len(zlib.decompress(cbor2.loads(status_list.payload)["lst"])) == 131_072 // 4


def test_dynamic_pass_through_the_api(client: TestClient, world: World) -> None:
    holder = dynamic.Holder()
    key = base64.urlsafe_b64encode(holder.public_key).decode().rstrip("=")
    text = _issue(client, world, "tenant1", "tenant1", holder_public_key=key).json()["qr_text"]
    shown = holder.present(text, door_id=world.ids["door1"])
    assert _verify(client, world, shown).json()["allow"] is True
    assert _verify(client, world, shown).json()["reasons"] == ["presentation_replayed"]
    assert _issue(client, world, "tenant1", "tenant1", holder_public_key="AAAA").status_code == 422


# --- the device call: success, then every kind of bad input --------------------------------------


def test_device_verify_allows_and_explains(client: TestClient, world: World, pass_text: str) -> None:
    body = _verify(client, world, pass_text).json()
    assert body["decision"] == "allow" and body["reasons"] == [] and len(body["decision_id"]) == 32
    assert set(body["versions"]) == {"trust_list", "status_list", "grant_id"}


def test_device_verify_refuses_a_tampered_signature_with_a_trusted_kid(client: TestClient, world: World, pass_text: str) -> None:
    assert _verify(client, world, pass_text).json()["allow"] is True
    response = _verify(client, world, signature_flipped(pass_text))
    assert response.status_code == 200
    body = response.json()
    assert body["allow"] is False and body["decision"] == "deny" and body["reasons"] == ["signature_invalid"]


def test_device_verify_with_camera_frame(client: TestClient, world: World, pass_text: str) -> None:
    files = {"image": ("frame.png", qr.render_png(pass_text), "image/png")}
    ok = client.post("/v1/device/verify", data={"door_id": str(world.ids["door1"])}, files=files, headers=world.auth("device1"))
    assert ok.status_code == 200 and ok.json()["allow"] is True
    blank = {"image": ("blank.png", _blank_png(), "image/png")}
    none = client.post("/v1/device/verify", data={"door_id": str(world.ids["door1"])}, files=blank, headers=world.auth("device1"))
    assert none.json()["reasons"] == ["qr_not_found"]


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (64, 64), 255).save(out, "PNG")
    return out.getvalue()


def _upload(client: TestClient, world: World, content: bytes, name: str = "f.png") -> Any:
    files = {"image": (name, content, "application/octet-stream")}
    return client.post("/v1/device/verify", data={"door_id": str(world.ids["door1"])}, files=files, headers=world.auth("device1"))


def test_bad_uploads(client: TestClient, world: World) -> None:
    assert (r := _upload(client, world, b"not a picture")).status_code == 415 and _error(r) == "image_invalid"
    assert (r := _upload(client, world, b"\x89PNG" + b"\0" * (5 * 1024 * 1024))).status_code == 413
    gif = base64.b64decode("R0lGODlhAQABAAAAACw=")
    assert _upload(client, world, gif).status_code == 415


def test_request_problems_are_specific_4xx(client: TestClient, world: World, pass_text: str) -> None:
    headers = world.auth("device1")
    assert (r := client.post("/v1/device/verify", content=b"{", headers={**headers, "content-type": "application/json"})).status_code == 422 and _error(r) == "invalid_json"
    assert (r := client.post("/v1/device/verify", json={"door_id": 1}, headers=headers)).status_code == 422 and _error(r) == "invalid_input"
    assert (r := client.post("/v1/device/verify", content=b"x", headers={**headers, "content-type": "text/plain"})).status_code == 415
    assert (r := _verify(client, world, "NH1:" + "A" * 5000)).status_code == 422 and _error(r) == "qr_text_too_long"
    assert (r := client.post("/v1/device/verify", json={"door_id": 999_999, "qr_text": pass_text}, headers=headers)).status_code == 403 and _error(r) == "door_not_assigned"
    assert (r := _verify(client, world, pass_text, door="door2")).status_code == 403 and _error(r) == "door_not_assigned"
    assert (r := _verify(client, world, pass_text, who="owner1")).status_code == 403 and _error(r) == "forbidden_role"
    assert client.post("/v1/device/verify", json={"door_id": world.ids["door1"], "qr_text": pass_text}).status_code == 401


def _signed(ctx: AppContext, claims: dict[Any, Any], protected: dict[int, Any] | None = None) -> str:
    with ctx.db.session() as s:
        key = keys.signing_key(keys.active_issuer_key(s, ctx.sealer), ctx.sealer)
    if protected is None:
        return codec.encode_text(codec.sign(cbor2.dumps(claims), key))
    body = cbor2.dumps(protected)
    to_sign = cbor2.dumps(["Signature1", body, b"", cbor2.dumps(claims)])
    return codec.encode_text(cbor2.dumps(cbor2.CBORTag(18, [body, {}, cbor2.dumps(claims), key.sign(to_sign)])))


def _claims_of(text: str) -> dict[Any, Any]:
    return cbor2.loads(codec.parse_sign1(codec.decode_text(text)).payload)  # type: ignore[no-any-return]


def test_bad_qr_content_is_a_deny_with_a_reason(ctx: AppContext, client: TestClient, world: World, pass_text: str) -> None:
    claims = _claims_of(pass_text)
    now = int(utcnow().timestamp())
    kid = codec.parse_sign1(codec.decode_text(pass_text)).kid
    foreign = ec.generate_private_key(ec.SECP256R1())
    foreign_key = COSEKey.from_pem(foreign.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), alg="ES256", kid=b"12345678")
    deep = b"\x81" * 1000 + b"\x00"
    cases = [
        ("prefix_mismatch", "HC1:" + pass_text[4:]),
        ("base45_invalid", "NH1:abc"),
        ("zlib_invalid", "NH1:" + codec.b45encode(b"\x78\x9c" + b"\xff" * 40)),
        ("zlib_too_large", "NH1:" + codec.b45encode(zlib.compress(b"\0" * (codec.MAX_INFLATED + 1)))),
        ("cbor_invalid", "NH1:" + codec.b45encode(deep)),
        ("cose_invalid", "NH1:" + codec.b45encode(cbor2.dumps({"not": "cose"}))),
        ("kid_unknown", codec.encode_text(codec.sign(cbor2.dumps(claims), foreign_key))),
        ("alg_not_allowed", _signed(ctx, claims, {1: codec.ALG_PS256, 4: kid})),
        ("alg_mismatch", _signed(ctx, claims, {1: codec.ALG_ES256, 4: kid})),
        ("kid_missing", _signed(ctx, claims, {1: codec.ALG_EDDSA})),
        ("pass_expired", _signed(ctx, {**claims, 4: now - 10})),
        ("pass_not_yet_valid", _signed(ctx, {**claims, 5: now + 3600})),
        ("claims_invalid", _signed(ctx, {**claims, 2: "not bytes"})),
        ("pass_unknown", _signed(ctx, {**claims, 7: b"\x01" * 16})),
    ]
    # A byte string that declares 64 GiB: refused without allocating it.
    cases.append(("cbor_invalid", "NH1:" + codec.b45encode(b"\x5b\x00\x00\x00\x10\x00\x00\x00\x00")))
    for expected, text in cases:
        response = _verify(client, world, text)
        assert response.status_code == 200, (expected, response.text)
        body = response.json()
        assert body["decision"] == "deny" and expected in body["reasons"], (expected, body["reasons"])


def test_more_malformed_requests_never_500(client: TestClient, world: World) -> None:
    headers, door = world.auth("device1"), world.ids["door1"]
    bad_json = [[1, 2], {"door_id": door, "qr_text": 5}, {"door_id": 0, "qr_text": "x"}, {"door_id": 2**63, "qr_text": "x"}, {"door_id": door, "qr_text": "x", "extra": 1}]
    for body in bad_json:
        response = client.post("/v1/device/verify", json=body, headers=headers)
        assert response.status_code == 422 and _error(response) == "invalid_input", body
    challenge = client.post("/v1/device/verify", json={"door_id": door, "qr_text": "x", "challenge": "***"}, headers=headers)
    assert challenge.status_code == 422 and _error(challenge) == "challenge_invalid"
    form = client.post("/v1/device/verify", data={"door_id": "abc"}, files={"image": ("f.png", b"x", "image/png")}, headers=headers)
    assert form.status_code == 422 and _error(form) == "invalid_input"
    no_image = client.post("/v1/device/verify", data={"door_id": str(door)}, files={"other": ("f.txt", b"x", "text/plain")}, headers=headers)
    assert no_image.status_code == 422 and _error(no_image) == "image_missing"
    for text, reason in (("", "prefix_mismatch"), ("NH1:", "cbor_invalid"), ("NH1:" + codec.b45encode(cbor2.dumps([b"", 1, None, None, 5])), "presentation_invalid")):
        assert _verify(client, world, text).json()["reasons"] == [reason]
