"""Revocation verbs: what each one changes, who may call it, the audit trail, the deny set, and the
per-issuer status list with its caching headers."""

from __future__ import annotations

import time
import zlib

import cbor2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from idsvc.audit.models import AuditEvent
from idsvc.auth.models import ApiKey
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.faces import gallery
from idsvc.faces import service as faces
from idsvc.faces.models import FaceTemplate
from idsvc.passes import codec, issuing
from idsvc.passes.models import Pass
from idsvc.registry.models import Grant, Person
from idsvc.revocation import denyset
from idsvc.revocation import service as revocation_service
from tests.world import World


def _issue(ctx: AppContext, person_id: int) -> issuing.IssuedPass:
    with ctx.db.session() as s:
        return issuing.issue(s, ctx.sealer, OPERATOR, person_id)


def _verify(client: TestClient, world: World, text: str, door: str = "door1") -> dict:
    answer = client.post("/v1/device/verify", json={"door_id": world.ids[door], "qr_text": text}, headers=world.auth("device1"))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _enrol_template(ctx: AppContext, person_id: int) -> None:
    """A stored template without running the face model: the row the faces service would write."""
    with ctx.db.session() as s:
        consent = faces.record_consent(s, OPERATOR, person_id, method="signed form", text_version="2026-11", language="zh-CN")
        person = s.get(Person, person_id)
        vector = np.ones(512, dtype=np.float32) / np.sqrt(512)
        s.add(FaceTemplate(site_id=person.site_id, person_id=person_id, consent_id=consent.id, pack="test", dim=512,
                           sealed=gallery.seal_embedding(ctx.sealer, vector, person.site_id, person_id, "test"), images_used=1, quality=[], created_by="test"))


def _events(ctx: AppContext, kind: str) -> list[AuditEvent]:
    with ctx.db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.kind == kind)))


def test_revoking_a_person_revokes_passes_grants_and_templates(ctx: AppContext, client: TestClient, world: World) -> None:
    tenant = world.ids["tenant1"]
    issued = _issue(ctx, tenant)
    _enrol_template(ctx, tenant)
    assert _verify(client, world, issued.text)["allow"] is True

    answer = client.post(f"/v1/people/{tenant}/revoke", json={"reason": "moved out, keys not returned"}, headers=world.auth("admin_a"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"entity": "person", "id": tenant, "status": "revoked", "cascade": {"passes_revoked": 1, "grants_revoked": 1, "templates_deleted": 1}}

    with ctx.db.session() as s:
        assert s.get(Person, tenant).status.value == "revoked"
        assert {p.status.value for p in s.scalars(select(Pass).where(Pass.person_id == tenant))} == {"revoked"}
        assert {g.status.value for g in s.scalars(select(Grant).where(Grant.person_id == tenant))} == {"revoked"}
        assert s.scalars(select(FaceTemplate).where(FaceTemplate.person_id == tenant)).all() == []
    decision = _verify(client, world, issued.text)
    assert decision["allow"] is False
    assert {"pass_revoked", "subject_revoked", "grant_revoked"} <= set(decision["reasons"])
    (event,) = _events(ctx, "person.revoked")
    assert event.actor.startswith("key:") and event.data["reason"] == "moved out, keys not returned"
    assert len(_events(ctx, "pass.revoked")) == 1 and len(_events(ctx, "grant.revoked")) == 1


def test_suspend_and_reinstate_a_person(ctx: AppContext, client: TestClient, world: World) -> None:
    tenant = world.ids["tenant1"]
    issued = _issue(ctx, tenant)
    assert client.post(f"/v1/people/{tenant}/suspend", json={"reason": "rent dispute"}, headers=world.auth("admin_a")).json()["status"] == "suspended"
    assert "subject_suspended" in _verify(client, world, issued.text)["reasons"]
    assert ctx.deny.reasons(sub=bytes.fromhex(_pseudonym(ctx, tenant))) == ["subject_suspended"]
    assert client.post(f"/v1/people/{tenant}/suspend", json={"reason": "again"}, headers=world.auth("admin_a")).status_code == 409
    assert client.post(f"/v1/people/{tenant}/reinstate", json={"reason": "settled"}, headers=world.auth("admin_a")).json()["status"] == "active"
    assert _verify(client, world, issued.text)["allow"] is True
    assert ctx.deny.reasons(sub=bytes.fromhex(_pseudonym(ctx, tenant))) == []
    assert [e.data["reason"] for e in _events(ctx, "person.suspended") + _events(ctx, "person.reinstated")] == ["rent dispute", "settled"]


def _pseudonym(ctx: AppContext, person_id: int) -> str:
    with ctx.db.session() as s:
        return s.get(Person, person_id).pseudonym


@pytest.mark.parametrize(("who", "status"), [("owner1", 403), ("tenant1", 403), ("admin_b", 404), ("device1", 404)])
def test_only_site_admins_revoke_people(ctx: AppContext, client: TestClient, world: World, who: str, status: int) -> None:
    tenant = world.ids["tenant1"]
    answer = client.post(f"/v1/people/{tenant}/revoke", json={"reason": "x"}, headers=world.auth(who))
    assert answer.status_code == status, answer.text
    with ctx.db.session() as s:
        assert s.get(Person, tenant).status.value == "active"


def test_owners_revoke_only_tenancies_of_their_units(client: TestClient, world: World) -> None:
    own, other = world.ids["grant1"], world.ids["grant2"]
    assert client.post(f"/v1/grants/{own}/revoke", json={"reason": "lease ended"}, headers=world.auth("owner1")).json()["status"] == "revoked"
    assert client.post(f"/v1/grants/{other}/revoke", json={"reason": "x"}, headers=world.auth("owner1")).status_code == 404


def test_device_revocation_stops_its_key_at_once(ctx: AppContext, client: TestClient, world: World) -> None:
    device = world.ids["device1"]
    issued = _issue(ctx, world.ids["tenant1"])
    assert _verify(client, world, issued.text)["allow"] is True  # the key is now in the one-second memory
    assert client.post(f"/v1/devices/{device}/suspend", json={"reason": "tampered"}, headers=world.auth("admin_a")).status_code == 200
    refused = client.post("/v1/device/verify", json={"door_id": world.ids["door1"], "qr_text": issued.text}, headers=world.auth("device1"))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "device_inactive"
    assert client.post(f"/v1/devices/{device}/reinstate", json={"reason": "checked"}, headers=world.auth("admin_a")).status_code == 200
    assert _verify(client, world, issued.text)["allow"] is True
    answer = client.post(f"/v1/devices/{device}/revoke", json={"reason": "stolen"}, headers=world.auth("admin_a"))
    assert answer.json()["cascade"] == {"api_keys_revoked": 1}
    with ctx.db.session() as s:
        assert s.scalars(select(ApiKey).where(ApiKey.device_id == device, ApiKey.revoked_at.is_(None))).all() == []
    assert client.post(f"/v1/devices/{device}/reinstate", json={"reason": "found"}, headers=world.auth("admin_a")).status_code == 409
    assert client.post(f"/v1/devices/{device}/revoke", json={"reason": "x"}, headers=world.auth("admin_b")).status_code == 404


def test_withdrawing_an_issuer_key_fails_its_passes(ctx: AppContext, client: TestClient, world: World) -> None:
    issued = _issue(ctx, world.ids["tenant1"])
    kid = issued.row.kid
    assert client.post(f"/v1/issuer-keys/{kid}/withdraw", json={"reason": "leaked"}, headers=world.auth("admin_a")).status_code == 403
    answer = client.post(f"/v1/issuer-keys/{kid}/withdraw", json={"reason": "leaked"}, headers=world.auth("district"))
    assert answer.json()["status"] == "withdrawn"
    assert ctx.deny.reasons(kid=bytes.fromhex(kid)) == ["issuer_key_withdrawn"]
    assert "issuer_key_withdrawn" in _verify(client, world, issued.text)["reasons"]
    assert _events(ctx, "pass_key.withdrawn")[0].data["reason"] == "leaked"


def test_pass_verbs_reach_the_deny_set(ctx: AppContext, client: TestClient, world: World) -> None:
    issued = _issue(ctx, world.ids["tenant1"])
    pass_id = bytes.fromhex(issued.row.pass_id)
    route = f"/v1/passes/{issued.row.id}/status"
    client.post(route, json={"status": "suspended", "reason": "lost phone"}, headers=world.auth("admin_a"))
    assert ctx.deny.reasons(pass_id=pass_id) == ["pass_suspended"]
    client.post(route, json={"status": "active", "reason": "found it"}, headers=world.auth("admin_a"))
    assert ctx.deny.reasons(pass_id=pass_id) == []
    client.post(route, json={"status": "revoked", "reason": "lost again"}, headers=world.auth("admin_a"))
    assert ctx.deny.reasons(pass_id=pass_id) == ["pass_revoked"]
    with ctx.db.session() as s:
        assert denyset.from_database(s)[denyset.pass_key(pass_id)] == "revoked"


def test_deny_set_reaches_another_node_over_redis(ctx: AppContext, uses_redis: bool, world: World) -> None:
    if not uses_redis:
        pytest.skip("needs IDSVC_TEST_REDIS_URL: nodes share notices through Redis pub/sub")
    other = AppContext.from_settings(ctx.settings)  # a second node: own bus, own deny set, same Redis
    try:
        with other.db.session() as s:
            other.deny.rebuild(s)
        issued = _issue(ctx, world.ids["tenant1"])
        with ctx.db.session() as s:
            issuing.change_status(s, OPERATOR, issued.row.id, issued.row.status.revoked, "lost")
        pass_id = bytes.fromhex(issued.row.pass_id)
        deadline = time.monotonic() + 5
        while not other.deny.reasons(pass_id=pass_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert other.deny.reasons(pass_id=pass_id) == ["pass_revoked"]
        # The shared copy a restarted node loads from holds it too.
        assert ctx.kv.client.hget(ctx.settings.redis_prefix + "deny", denyset.pass_key(pass_id)) == b"revoked"  # type: ignore[attr-defined]
    finally:
        other.close()


def test_status_list_per_issuer_with_etag(ctx: AppContext, client: TestClient, world: World) -> None:
    issued = _issue(ctx, world.ids["tenant1"])
    url, auth = f"/v1/status-lists/{issued.row.kid}", world.auth("device1")
    first = client.get(url, headers=auth)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    assert client.get(url, headers=auth).content == first.content  # same version, same bytes
    unchanged = client.get(url, headers={**auth, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    client.post(f"/v1/passes/{issued.row.id}/status", json={"status": "revoked", "reason": "lost"}, headers=world.auth("admin_a"))
    changed = client.get(url, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    body = cbor2.loads(codec.parse_sign1(changed.content).payload)
    bits = zlib.decompress(body["lst"])
    index = issued.row.status_index
    assert len(bits) * 4 >= 131_072 and (bits[index // 4] >> (2 * (index % 4))) & 3 == 1
    assert client.get("/v1/status-lists/00000000000000ff", headers=auth).status_code == 404


def test_backstop_catches_a_change_whose_notice_never_came(ctx: AppContext, world: World) -> None:
    tenant = world.ids["tenant1"]
    sub = bytes.fromhex(_pseudonym(ctx, tenant))
    stop = ctx.deny.watch(ctx.db, interval_s=0.05)
    # Another process without Redis (the CLI of a single-node install): its notice stays in that process.
    other = AppContext.from_settings(ctx.settings.model_copy(update={"redis_url": ""}))
    try:
        with other.db.session() as s:
            revocation_service.change_person(s, OPERATOR, tenant, revocation_service.Verb.suspend, "rent dispute")
        deadline = time.monotonic() + 5
        while not ctx.deny.reasons(sub=sub) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ctx.deny.reasons(sub=sub) == ["subject_suspended"]
    finally:
        other.close()
        stop()


def test_a_reload_that_overlapped_a_notice_is_dropped(ctx: AppContext) -> None:
    """A database read that began before a revocation notice landed must not undo it (denyset.rebuild)."""
    key = denyset.pass_key(bytes(16).hex())
    generation = ctx.deny._generation
    with ctx.db.session() as s:
        read_before_the_notice = denyset.from_database(s)
    ctx.deny._apply([[key, "revoked"]])  # the notice arrives while the reload is under way
    assert ctx.deny._replace(read_before_the_notice, generation) is False
    assert ctx.deny.status_of(key) == "revoked"
