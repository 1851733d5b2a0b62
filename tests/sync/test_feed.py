"""The signed sync feed: snapshot and deltas through the API, verified and applied as a bridge does,
and everything a receiver must refuse."""

from __future__ import annotations

from datetime import UTC, datetime

import cbor2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy.orm.attributes import flag_modified

from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.faces import gallery, service as faces
from idsvc.faces.models import ConsentPurpose, FaceTemplate
from idsvc.passes import codec, dynamic, issuing, keys
from idsvc.registry.models import Person, Site, Status
from idsvc.revocation import service as revocation
from idsvc.revocation.service import Verb
from idsvc.sync import feed
from idsvc.sync.verify import REVOKED, SUSPENDED, VALID, FeedState, SyncError, apply, open_template, root_key
from tests.world import World


@pytest.fixture
def root(ctx: AppContext, world: World):  # noqa: ANN201 - a python-cwt key
    with ctx.db.session() as s:
        keys.active_issuer_key(s, ctx.sealer)
        row = keys.root_public_key(s)
        assert row is not None
        return root_key(row.public_der)


def _feed(client: TestClient, world: World, since: int | None = None, who: str = "device1") -> bytes:
    answer = client.get(f"/v1/sync/sites/{world.ids['site_a']}/feed", params={} if since is None else {"since": since}, headers=world.auth(who))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/cbor" and answer.headers["cache-control"] == "no-store"
    return answer.content


def _sync(client: TestClient, world: World, root, state: FeedState | None = None) -> FeedState:  # noqa: ANN001
    return apply(state, _feed(client, world, None if state is None else state.version), root, site_id=world.ids["site_a"])


def _issue(ctx: AppContext, person_id: int, holder: bytes | None = None) -> issuing.IssuedPass:
    with ctx.db.session() as s:
        return issuing.issue(s, ctx.sealer, OPERATOR, person_id, holder_public_key=holder)


def _reasons(state: FeedState, issued: issuing.IssuedPass, sub: bytes, door_id: int) -> list[str]:
    row = issued.row
    return state.offline_reasons(bytes.fromhex(row.pass_id), bytes.fromhex(row.kid), row.status_index, sub, door_id, datetime.now(UTC))


def _sub(ctx: AppContext, person_id: int) -> bytes:
    with ctx.db.session() as s:
        return bytes.fromhex(s.get(Person, person_id).pseudonym)


def test_snapshot_holds_grants_passes_and_holder_keys_by_pseudonym_only(ctx: AppContext, client: TestClient, world: World, root) -> None:  # noqa: ANN001
    holder = dynamic.Holder()
    issued = _issue(ctx, world.ids["tenant1"], holder.public_key)
    document = _feed(client, world)
    for name in (b"Tenant 1", b"Owner 1", b"Tenant 2"):
        assert name not in document
    state = apply(None, document, root, site_id=world.ids["site_a"])
    sub = _sub(ctx, world.ids["tenant1"])
    entry = state.passes[bytes.fromhex(issued.row.pass_id)]
    assert entry["sub"] == sub and entry["holder_key"][-2] == holder.public_key and entry["status"] == VALID
    assert {g["sub"] for g in state.grants.values()} == {sub, _sub(ctx, world.ids["tenant2"])}
    assert _reasons(state, issued, sub, world.ids["door1"]) == []
    assert _reasons(state, issued, sub, world.ids["door2"]) == ["no_grant_for_door"]
    assert len(state.status_bits) == 1 and state.pass_status(b"\0" * 16, bytes.fromhex(issued.row.kid), 5) == VALID


def test_deltas_carry_revocations_suspensions_and_grants(ctx: AppContext, client: TestClient, world: World, root) -> None:  # noqa: ANN001
    issued = _issue(ctx, world.ids["tenant1"])
    sub = _sub(ctx, world.ids["tenant1"])
    state = _sync(client, world, root)
    empty = _feed(client, world, state.version)
    assert cbor2.loads(codec.parse_sign1(empty).payload)["passes"] == []  # nothing changed: a signed heartbeat

    with ctx.db.session() as s:
        revocation.change_person(s, OPERATOR, world.ids["tenant1"], Verb.suspend, "rent dispute")
    state = _sync(client, world, root, state)
    assert _reasons(state, issued, sub, world.ids["door1"]) == ["subject_suspended"]

    with ctx.db.session() as s:
        revocation.change_pass(s, OPERATOR, issued.row.id, Verb.revoke, "lost phone")
        revocation.change_grant(s, OPERATOR, world.ids["grant1"], Verb.suspend, "check")
        revocation.change_person(s, OPERATOR, world.ids["tenant1"], Verb.reinstate, "settled")
    before = state.version
    delta = _feed(client, world, before)
    state = apply(state, delta, root, site_id=world.ids["site_a"])
    assert state.version == before + 1  # one transaction, one version
    assert state.pass_status(bytes.fromhex(issued.row.pass_id), b"", 0) == REVOKED
    assert _reasons(state, issued, sub, world.ids["door1"]) == ["pass_revoked", "grant_suspended"]
    assert len(delta) < 1024  # a revocation costs the bridge well under a kilobyte


def test_door_group_change_and_new_key_reach_the_bridge(ctx: AppContext, client: TestClient, world: World, root) -> None:  # noqa: ANN001
    state = _sync(client, world, root)
    with ctx.db.session() as s:
        keys.rotate(s, ctx.sealer, OPERATOR)
    state = _sync(client, world, root, state)
    assert len(state.issuers) == 2
    issued = _issue(ctx, world.ids["tenant1"])  # signed by the new key
    with ctx.db.session() as s:
        revocation.change_pass(s, OPERATOR, issued.row.id, Verb.suspend, "check")
    state = _sync(client, world, root, state)
    assert state.pass_status(bytes.fromhex(issued.row.pass_id), b"", 0) == SUSPENDED


def test_receiver_refuses_rollback_gaps_tampering_and_other_sites(ctx: AppContext, client: TestClient, world: World, root) -> None:  # noqa: ANN001
    site = world.ids["site_a"]
    old_snapshot = _feed(client, world)
    state = apply(None, old_snapshot, root, site_id=site)
    with ctx.db.session() as s:
        revocation.change_grant(s, OPERATOR, world.ids["grant1"], Verb.revoke, "moved out")
    state = _sync(client, world, root, state)
    with pytest.raises(SyncError) as err:
        apply(state, old_snapshot, root, site_id=site)
    assert err.value.code == "feed_rollback"
    with pytest.raises(SyncError) as err:
        apply(state, _feed(client, world, state.version - 1), root, site_id=site)
    assert err.value.code == "feed_gap"
    with pytest.raises(SyncError) as err:
        apply(None, _feed(client, world), root, site_id=world.ids["site_b"])
    assert err.value.code == "feed_wrong_site"
    tampered = bytearray(_feed(client, world))
    tampered[-70] ^= 1  # inside the signature
    with pytest.raises(SyncError) as err:
        apply(None, bytes(tampered), root, site_id=site)
    assert err.value.code in {"feed_signature_invalid", "feed_invalid"}
    stranger = root_key(codec.spki_der(Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(SyncError) as err:
        apply(None, _feed(client, world), stranger, site_id=site)
    assert err.value.code == "feed_untrusted"
    assert client.get(f"/v1/sync/sites/{site}/feed", params={"since": 10**9}, headers=world.auth("device1")).status_code == 409


@pytest.mark.parametrize(("who", "status"), [("admin_a", 200), ("district", 200), ("admin_b", 404), ("owner1", 404), ("tenant1", 404)])
def test_who_may_read_a_site_feed(client: TestClient, world: World, who: str, status: int) -> None:
    assert client.get(f"/v1/sync/sites/{world.ids['site_a']}/feed", headers=world.auth(who)).status_code == status


def test_face_templates_only_where_the_site_allows_and_sealed_for_it(ctx: AppContext, client: TestClient, world: World, root) -> None:  # noqa: ANN001
    tenant, site_id = world.ids["tenant1"], world.ids["site_a"]
    vector = np.arange(512, dtype=np.float32) / 512
    with ctx.db.session() as s:
        consent = faces.record_consent(s, OPERATOR, tenant, method="signed form", text_version="2026-11", language="zh-CN")
        s.add(FaceTemplate(site_id=site_id, person_id=tenant, consent_id=consent.id, pack="p1", dim=512,
                           sealed=gallery.seal_embedding(ctx.sealer, vector, site_id, tenant, "p1"), images_used=1, quality=[], created_by="t"))
    state = _sync(client, world, root)
    assert state.templates == {}
    with ctx.db.session() as s:
        site = s.get(Site, site_id)
        site.settings = {**(site.settings or {}), "sync": {"faces": True}}
        flag_modified(site, "settings")
        face_key = feed.site_face_key(s, ctx.sealer, site_id)
    state = _sync(client, world, root)
    assert state.templates == {}  # the site allows it, the person has not agreed to an offline copy
    with ctx.db.session() as s:
        faces.record_consent(s, OPERATOR, tenant, purpose=ConsentPurpose.face_offline, method="signed form", text_version="2026-11", language="zh-CN")
    state = _sync(client, world, root, state)  # the delta carries it from the consent on
    sub = _sub(ctx, tenant)
    assert len(state.templates[sub]) == 1
    with ctx.db.session() as s:  # withdrawn: it leaves the bridges, it stays for online decisions
        assert faces.withdraw_consent(s, OPERATOR, tenant, ConsentPurpose.face_offline) == 0
    state = _sync(client, world, root, state)
    assert sub not in state.templates
    with ctx.db.session() as s:
        faces.record_consent(s, OPERATOR, tenant, purpose=ConsentPurpose.face_offline, method="in app", text_version="2026-11", language="zh-CN")
    state = _sync(client, world, root)  # a fresh snapshot carries it too
    (template,) = state.templates[sub]
    assert np.array_equal(np.frombuffer(open_template(face_key, site_id, template), dtype="<f4"), vector)
    with ctx.db.session() as s:  # the last grant here ends: the template leaves the bridge
        revocation.change_grant(s, OPERATOR, world.ids["grant1"], Verb.revoke, "lease ended")
    state = _sync(client, world, root, state)
    assert sub not in state.templates
    with ctx.db.session() as s:
        revocation.change_person(s, OPERATOR, tenant, Verb.revoke, "moved out")
    state = _sync(client, world, root, state)
    assert state.people[sub] == Status.revoked.value
