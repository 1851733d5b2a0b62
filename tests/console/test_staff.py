"""Site staff revoke, suspend and reinstate people and devices, and inspect a pass, from the console;
the same rules as the API (own site only, allowed transitions) and the same effect at the door."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.console.conftest import csrf_of, sign_in
from tests.world import World


def test_people_page_is_for_admins_of_the_site(client: TestClient, world: World) -> None:
    expected = {"district": 200, "admin_a": 200, "admin_b": 200, "owner1": 403, "tenant1": 403, "device1": 403}
    for role, status in expected.items():
        sign_in(client, world.tokens[role])
        page = client.get("/console/people")
        assert page.status_code == status, role
        if role == "admin_b":
            assert "Tenant 1" not in page.text
    sign_in(client, world.tokens["admin_a"])
    assert "Tenant 1" in client.get("/console/people").text


def test_an_admin_revokes_and_reinstates_a_person(client: TestClient, world: World) -> None:
    tenant = world.ids["tenant1"]
    sign_in(client, world.tokens["admin_b"])
    csrf_b = csrf_of(client.get("/console/people").text)
    assert client.post(f"/console/people/{tenant}/revoke", data={"csrf": csrf_b, "reason": "x"}).status_code == 404  # another site's person
    sign_in(client, world.tokens["admin_a"])
    csrf = csrf_of(client.get("/console/people").text)
    assert client.post(f"/console/people/{tenant}/revoke", data={"csrf": csrf, "reason": "moved out"}, follow_redirects=False).status_code == 303
    assert client.get(f"/v1/people/{tenant}", headers=world.auth("admin_a")).json()["status"] == "revoked"
    assert client.post(f"/console/people/{tenant}/suspend", data={"csrf": csrf, "reason": "x"}).status_code == 409  # not from revoked
    assert client.post(f"/console/people/{tenant}/reinstate", data={"csrf": csrf, "reason": "back"}, follow_redirects=False).status_code == 303
    assert client.get(f"/v1/people/{tenant}", headers=world.auth("admin_a")).json()["status"] == "active"
    assert client.post(f"/console/people/{tenant}/revoke", data={"csrf": "forged", "reason": "x"}).status_code == 403


def test_a_suspended_device_is_refused_at_once(client: TestClient, world: World) -> None:
    door, device = world.ids["door1"], world.ids["device1"]
    sign_in(client, world.tokens["admin_a"])
    page = client.get(f"/console/doors/{door}")
    assert f'data-device="{device}"' in page.text
    answer = client.post(f"/console/devices/{device}/suspend", data={"csrf": csrf_of(page.text), "reason": "tampered", "next": f"/console/doors/{door}"})
    assert answer.status_code == 200 and answer.url.path == f"/console/doors/{door}"
    verify = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": door, "qr_text": "NH1:x"})
    assert verify.status_code == 401 and verify.json()["error"]["code"] == "device_inactive"


def test_inspect_shows_a_revoked_pass_as_failed(client: TestClient, world: World) -> None:
    issued = client.post(f"/v1/people/{world.ids['tenant1']}/passes", headers=world.auth("admin_a"), json={}).json()
    sign_in(client, world.tokens["admin_a"])
    csrf = csrf_of(client.get("/console/passes/inspect").text)
    good = client.post("/console/passes/inspect", data={"csrf": csrf, "text": issued["qr_text"]})
    assert re.search(r'data-result="ok"', good.text), good.text[:500]
    client.post(f"/v1/passes/{issued['id']}/status", headers=world.auth("admin_a"), json={"status": "revoked", "reason": "lost"})
    bad = client.post("/console/passes/inspect", data={"csrf": csrf, "text": issued["qr_text"]})
    assert 'data-result="failed"' in bad.text and "通行码已吊销" in bad.text
    sign_in(client, world.tokens["owner1"])
    assert client.get("/console/passes/inspect").status_code == 403
