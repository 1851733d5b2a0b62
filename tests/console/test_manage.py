"""Site staff register buildings, units, doors, devices and people from the console, with the API's rules."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.console.conftest import csrf_of, sign_in
from tests.world import World


def test_an_admin_builds_a_site_from_the_console(client: TestClient, world: World) -> None:
    site = world.ids["site_a"]
    sign_in(client, world.tokens["admin_a"])
    csrf = csrf_of(client.get(f"/console/sites/{site}/manage").text)
    admin = world.auth("admin_a")

    def post(path: str, **form: object) -> None:
        answer = client.post(f"/console/sites/{site}/{path}", data={"csrf": csrf, **form}, follow_redirects=False)
        assert answer.status_code == 303, answer.text

    post("buildings", code="b2", name="Building 2")
    building = next(b for b in client.get("/v1/buildings", headers=admin).json() if b["code"] == "b2")
    post("units", building_id=building["id"], label="201", kind="shop", owner_id=world.ids["owner1"])
    unit = next(u for u in client.get("/v1/units", headers=admin).json() if u["label"] == "201")
    assert (unit["kind"], unit["owner_id"]) == ("shop", world.ids["owner1"])
    post("doors", code="u201", name="Shop 201", kind="unit_door", building_id=building["id"], unit_id=unit["id"])
    door = next(d for d in client.get("/v1/doors", headers=admin).json() if d["code"] == "u201")
    post("devices", code="lock-201", name="Lock 201", kind="lock", door_ids=[door["id"]])
    device = next(d for d in client.get("/v1/devices", headers=admin).json() if d["code"] == "lock-201")
    assert device["door_ids"] == [door["id"]]
    answer = client.post(f"/console/sites/{site}/people", data={"csrf": csrf, "display_name": "新住户", "kind": "resident"})
    assert answer.status_code == 200 and "新住户" in answer.text
    created = client.get("/v1/audit/events", headers=admin, params={"kind": "door.created"}).json()["events"]
    me = client.get("/v1/me", headers=admin).json()["actor"]
    assert [e["actor"] for e in created if e["entity_id"] == door["id"]] == [me]  # audited as the signed-in key


def test_bad_forms_are_clear_errors_and_scopes_hold(client: TestClient, world: World) -> None:
    site = world.ids["site_a"]
    sign_in(client, world.tokens["admin_a"])
    csrf = csrf_of(client.get(f"/console/sites/{site}/manage").text)
    duplicate = client.post(f"/console/sites/{site}/doors", data={"csrf": csrf, "code": "u101", "name": "again", "kind": "unit_door"})
    assert 400 <= duplicate.status_code < 500 and "data-code=" in duplicate.text
    bad_kind = client.post(f"/console/sites/{site}/devices", data={"csrf": csrf, "code": "x", "name": "x", "kind": "toaster"})
    assert bad_kind.status_code == 422 and 'data-code="invalid_input"' in bad_kind.text
    bad_id = client.post(f"/console/sites/{site}/units", data={"csrf": csrf, "building_id": "abc", "label": "9", "kind": "flat"})
    assert bad_id.status_code == 422
    sign_in(client, world.tokens["admin_b"])
    assert client.get(f"/console/sites/{site}/manage").status_code == 404
    csrf_b = csrf_of(client.get(f"/console/sites/{world.ids['site_b']}/manage").text)
    assert client.post(f"/console/sites/{site}/buildings", data={"csrf": csrf_b, "code": "evil", "name": "evil"}).status_code in (403, 404)
    sign_in(client, world.tokens["owner1"])
    assert client.get(f"/console/sites/{site}/manage").status_code == 403



def test_an_admin_renames_a_door_and_sets_its_face_policy_as_the_api_would(client: TestClient, world: World) -> None:
    door, door2 = world.ids["door1"], world.ids["door2"]
    sign_in(client, world.tokens["admin_a"])
    csrf = csrf_of(client.get(f"/console/doors/{door}").text)
    answer = client.post(f"/console/doors/{door}", data={"csrf": csrf, "name": "Flat 101 (new lock)", "face_mode": "off"}, follow_redirects=False)
    assert answer.status_code == 303
    shown = client.get(f"/v1/doors/{door}", headers=world.auth("admin_a")).json()
    assert (shown["name"], shown["face_mode"]) == ("Flat 101 (new lock)", "off")
    # face_only passes the faces domain's check or is refused with its code, exactly as through the API
    console = client.post(f"/console/doors/{door2}", data={"csrf": csrf, "name": "Flat 102", "face_mode": "face_only"})
    api = client.patch(f"/v1/doors/{door}", headers=world.auth("admin_a"), json={"face_mode": "face_only"})
    assert console.status_code == api.status_code
    if api.status_code != 200:
        assert f'data-code="{api.json()["error"]["code"]}"' in console.text
    sign_in(client, world.tokens["owner1"])
    refused = client.post(f"/console/doors/{door}", data={"csrf": csrf_of(client.get("/console/units").text), "name": "x", "face_mode": "off"})
    assert refused.status_code == client.patch(f"/v1/doors/{door}", headers=world.auth("owner1"), json={"name": "x"}).status_code == 404
