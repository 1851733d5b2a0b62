"""API keys: issue, use, expire, revoke; failures are rate limited per client address."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from idsvc.auth import service, subjects
from idsvc.auth.models import ApiKey, Role
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from tests.world import World


def test_token_is_shown_once_and_stored_only_as_a_hash(ctx: AppContext, client: TestClient, world: World) -> None:
    created = client.post("/v1/api-keys", headers=world.auth("admin_a"), json={"role": "tenant", "person_id": world.ids["tenant1"], "label": "phone"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    with ctx.db.session() as s:
        stored = s.scalar(select(ApiKey).where(ApiKey.id == created.json()["id"]))
        assert stored is not None and token not in (stored.token_hash, stored.token_prefix)
    assert "token" not in client.get("/v1/api-keys", headers=world.auth("admin_a"), params={"site_id": world.ids["site_a"]}).json()[0]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "tenant" and me["person_id"] == world.ids["tenant1"]


def test_revoked_and_expired_keys_stop_working(ctx: AppContext, client: TestClient, world: World) -> None:
    assert client.get("/v1/me", headers=world.auth("tenant1")).status_code == 200
    listing = client.get("/v1/api-keys", headers=world.auth("admin_a"), params={"site_id": world.ids["site_a"]}).json()
    tenant_key = next(k for k in listing if k["label"] == "tenant1")
    assert client.delete(f"/v1/api-keys/{tenant_key['id']}", headers=world.auth("admin_a")).status_code == 200
    refused = client.get("/v1/me", headers=world.auth("tenant1"))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_credentials"

    with ctx.db.session() as s:
        issued = service.issue_key(s, OPERATOR, Role.tenant, person_id=world.ids["tenant2"], expires_at=utcnow() + timedelta(seconds=30))
        s.flush()
        issued.key.expires_at = utcnow() - timedelta(seconds=1)  # as if 30 s had passed
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {issued.token}"}).status_code == 401


def test_a_site_admin_cannot_mint_keys_beyond_their_site(client: TestClient, world: World) -> None:
    district = client.post("/v1/api-keys", headers=world.auth("admin_a"), json={"role": "district_admin"})
    assert district.status_code == 403
    other_site = client.post("/v1/api-keys", headers=world.auth("admin_a"), json={"role": "site_admin", "site_id": world.ids["site_b"]})
    missing_site = client.post("/v1/api-keys", headers=world.auth("admin_a"), json={"role": "site_admin", "site_id": 999_999})
    assert other_site.status_code == 422 and other_site.json() == missing_site.json()  # another site looks exactly like none


def test_suspended_device_key_is_refused(ctx: AppContext, client: TestClient, world: World) -> None:
    from idsvc.registry.models import Device, Status

    assert client.get("/v1/me", headers=world.auth("device1")).json()["door_ids"] == [world.ids["door1"]]
    with ctx.db.session() as s:
        s.get(Device, world.ids["device1"]).status = Status.suspended  # type: ignore[union-attr]
    time.sleep(ctx.principals.ttl + 0.1)  # resolved keys are remembered for at most this long
    refused = client.get("/v1/me", headers=world.auth("device1"))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "device_inactive"


def test_guessing_keys_is_rate_limited(ctx: AppContext, client: TestClient, world: World) -> None:
    limit = ctx.settings.auth_failures_per_minute
    codes = [client.get("/v1/me", headers={"Authorization": f"Bearer idsvc_guess{n}"}).status_code for n in range(limit + 2)]
    assert codes[:limit] == [401] * limit and codes[-1] == 429
    assert client.get("/v1/me", headers={"Authorization": "Bearer idsvc_guess"}).json()["error"]["code"] == "rate_limited"


def test_missing_and_malformed_credentials(client: TestClient) -> None:
    missing = client.get("/v1/me")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_credentials"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401
    assert client.get("/v1/me", headers={"X-API-Key": "x" * 5000}).status_code == 401


def test_no_key_for_a_revoked_person_or_device(ctx: AppContext, client: TestClient, world: World) -> None:
    from idsvc.registry.models import Device, Person, Status

    with ctx.db.session() as s:
        s.get(Person, world.ids["tenant2"]).status = Status.revoked  # type: ignore[union-attr]
        s.get(Device, world.ids["device2"]).status = Status.revoked  # type: ignore[union-attr]
    admin = world.auth("admin_a")
    person = client.post("/v1/api-keys", headers=admin, json={"role": "tenant", "person_id": world.ids["tenant2"]})
    assert person.status_code == 409 and person.json()["error"]["code"] == "person_revoked"
    device = client.post("/v1/api-keys", headers=admin, json={"role": "device", "device_id": world.ids["device2"]})
    assert device.status_code == 409 and device.json()["error"]["code"] == "device_revoked"


def test_without_a_subject_directory_keys_are_refused_not_guessed(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    # auth reads key subjects through the registry's directory, installed by the app wiring.
    monkeypatch.setattr(subjects, "_installed", None)
    with ctx.db.session() as s, pytest.raises(RuntimeError, match="subject directory"):
        service.issue_key(s, OPERATOR, Role.site_admin, site_id=1)
