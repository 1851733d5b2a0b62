"""Units and tenancies end to end, as a landlord uses them: register a unit ("one house, one code"),
authorise a tenant from one date to another, take them off again, and find it all in the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from idsvc.core.db import utcnow
from idsvc.registry.units import _CODE_ALPHABET
from tests.world import World


def iso(t: datetime) -> str:
    return t.isoformat()


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def check(client: TestClient, world: World, door: int, person: int, at: datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"door_id": door, "person_id": person}
    if at is not None:
        body["at"] = iso(at)
    return ok(client.post("/v1/access/check", headers=world.auth("admin_a"), json=body))  # type: ignore[no-any-return]


def test_owner_registers_a_unit_and_its_code_is_stable(client: TestClient, world: World) -> None:
    owner = world.auth("owner1")
    unit = ok(client.post("/v1/units", headers=owner, json={"building_id": world.ids["building_a"], "label": "201"}), 201)
    assert unit["owner_id"] == world.ids["owner1"] and unit["site_id"] == world.ids["site_a"]
    code = unit["code"]
    assert len(code) == 12 and set(code) <= set(_CODE_ALPHABET) and not set(code) & set("01IO")
    assert unit["door_group_id"] is not None
    # Stable: reading and renaming keep it.
    assert ok(client.get(f"/v1/units/{unit['id']}", headers=owner))["code"] == code
    renamed = ok(client.patch(f"/v1/units/{unit['id']}", headers=owner, json={"label": "201A", "kind": "office"}))
    assert (renamed["code"], renamed["label"], renamed["kind"]) == (code, "201A", "office")
    # Every unit has its own code.
    codes = {code} | {ok(client.post("/v1/units", headers=owner, json={"building_id": world.ids["building_a"], "label": f"3{n:02d}"}), 201)["code"] for n in range(10)}
    assert len(codes) == 11
    assert sorted(u["id"] for u in ok(client.get("/v1/units", headers=owner))) == sorted([world.ids["unit1"], unit["id"], *range(unit["id"] + 1, unit["id"] + 11)])


def test_owner_cannot_make_someone_else_the_owner(client: TestClient, world: World) -> None:
    owner = world.auth("owner1")
    body = {"building_id": world.ids["building_a"], "label": "202", "owner_id": world.ids["owner2"]}
    error(client.post("/v1/units", headers=owner, json=body), 403, "forbidden_scope")
    ok(client.post("/v1/units", headers=owner, json={**body, "owner_id": world.ids["owner1"]}), 201)  # naming oneself is fine
    error(client.patch(f"/v1/units/{world.ids['unit1']}", headers=owner, json={"owner_id": world.ids["owner2"]}), 403, "forbidden_scope")
    error(client.patch(f"/v1/units/{world.ids['unit1']}", headers=owner, json={"owner_id": None}), 403, "forbidden_scope")
    assert ok(client.get(f"/v1/units/{world.ids['unit1']}", headers=owner))["owner_id"] == world.ids["owner1"]
    # Other sites' buildings do not exist for this owner.
    error(client.post("/v1/units", headers=owner, json={"building_id": world.ids["building_b"], "label": "9"}), 404, "building_not_found")


def test_site_admin_hands_a_unit_to_another_owner(client: TestClient, world: World) -> None:
    unit1, grant1 = world.ids["unit1"], world.ids["grant1"]
    ok(client.patch(f"/v1/units/{unit1}", headers=world.auth("admin_a"), json={"owner_id": world.ids["owner2"]}))
    error(client.get(f"/v1/units/{unit1}", headers=world.auth("owner1")), 404, "unit_not_found")
    error(client.get(f"/v1/grants/{grant1}", headers=world.auth("owner1")), 404, "grant_not_found")
    assert ok(client.get(f"/v1/units/{unit1}", headers=world.auth("owner2")))["owner_id"] == world.ids["owner2"]
    assert ok(client.get(f"/v1/grants/{grant1}", headers=world.auth("owner2")))["unit_id"] == unit1
    ok(client.post(f"/v1/grants/{grant1}/suspend", headers=world.auth("owner2"), json={"reason": "new landlord"}))


def test_tenancy_from_one_date_to_another_and_off_again(client: TestClient, world: World) -> None:
    owner, unit1, door1 = world.auth("owner1"), world.ids["unit1"], world.ids["door1"]
    # The landlord registers the new tenant, then authorises them from next week for a month.
    tenant = ok(client.post("/v1/people", headers=owner, json={"site_id": world.ids["site_a"], "display_name": "Li Lei", "kind": "tenant", "phone": "+86 138 0013 8000"}), 201)
    start, end = utcnow() + timedelta(days=7), utcnow() + timedelta(days=37)
    grant = ok(client.post(f"/v1/units/{unit1}/tenants", headers=owner, json={"person_id": tenant["id"], "valid_from": iso(start), "valid_until": iso(end)}), 201)
    assert (grant["unit_id"], grant["person_id"], grant["status"]) == (unit1, tenant["id"], "active")
    assert datetime.fromisoformat(grant["valid_from"]) == start and datetime.fromisoformat(grant["valid_until"]) == end
    assert tenant["id"] in {g["person_id"] for g in ok(client.get(f"/v1/units/{unit1}/tenants", headers=owner))}

    # Not yet, then yes (unit door and the building entrance), then no again after the end.
    assert check(client, world, door1, tenant["id"])["reasons"] == ["grant_not_yet_valid"]
    assert check(client, world, door1, tenant["id"], start + timedelta(hours=1))["allowed"]
    assert check(client, world, world.ids["entrance_a"], tenant["id"], start + timedelta(hours=1))["allowed"]
    assert check(client, world, world.ids["door2"], tenant["id"], start + timedelta(hours=1))["reasons"] == ["no_grant_for_door"]
    assert check(client, world, door1, tenant["id"], end)["reasons"] == ["grant_expired"]

    # Taken off: every live grant for the unit is revoked, at once.
    ended = ok(client.delete(f"/v1/units/{unit1}/tenants/{tenant['id']}?reason=moved%20out", headers=owner))
    assert [(g["id"], g["status"], g["status_reason"]) for g in ended] == [(grant["id"], "revoked", "moved out")]
    assert check(client, world, door1, tenant["id"], start + timedelta(hours=1))["reasons"] == ["grant_revoked"]
    assert tenant["id"] not in {g["person_id"] for g in ok(client.get(f"/v1/units/{unit1}/tenants", headers=owner))}
    assert tenant["id"] in {g["person_id"] for g in ok(client.get(f"/v1/units/{unit1}/tenants?include_ended=true", headers=owner))}
    error(client.delete(f"/v1/units/{unit1}/tenants/{tenant['id']}", headers=owner), 404, "tenancy_not_found")

    # The audit trail tells the story, and the landlord can read it.
    kinds = [e["kind"] for e in ok(client.get(f"/v1/audit/events?person_id={tenant['id']}", headers=owner))["events"]]
    assert kinds == ["grant.created", "tenancy.started", "grant.revoked", "tenancy.ended"]
    trail = ok(client.get(f"/v1/audit/events?kind=tenancy.&person_id={tenant['id']}", headers=world.auth("admin_a")))["events"]
    assert [(e["kind"], e["unit_id"], e["actor"]) for e in trail] == [
        ("tenancy.started", unit1, f"person:{world.ids['owner1']}"),
        ("tenancy.ended", unit1, f"person:{world.ids['owner1']}"),
    ]
    assert trail[1]["data"] == {"reason": "moved out", "grant_ids": [grant["id"]]}


def test_taking_a_tenant_off_revokes_all_their_grants_for_that_unit_only(ctx: Any, client: TestClient, world: World) -> None:
    admin, unit1, tenant1 = world.auth("admin_a"), world.ids["unit1"], world.ids["tenant1"]
    window = {"valid_from": iso(utcnow()), "valid_until": iso(utcnow() + timedelta(days=3))}
    second = ok(client.post(f"/v1/units/{unit1}/tenants", headers=admin, json={"person_id": tenant1, **window}), 201)
    other_unit = ok(client.post(f"/v1/units/{world.ids['unit2']}/tenants", headers=admin, json={"person_id": tenant1, **window}), 201)
    ended = ok(client.delete(f"/v1/units/{unit1}/tenants/{tenant1}", headers=world.auth("owner1")))
    assert sorted(g["id"] for g in ended) == sorted([world.ids["grant1"], second["id"]])
    assert ok(client.get(f"/v1/grants/{other_unit['id']}", headers=admin))["status"] == "active"
    assert check(client, world, world.ids["door2"], tenant1)["allowed"]
    assert check(client, world, world.ids["door1"], tenant1)["allowed"] is False


def test_former_tenant_no_longer_sees_the_unit(client: TestClient, world: World) -> None:
    tenant, unit1 = world.auth("tenant1"), world.ids["unit1"]
    assert ok(client.get(f"/v1/units/{unit1}", headers=tenant))["id"] == unit1
    ok(client.delete(f"/v1/units/{unit1}/tenants/{world.ids['tenant1']}", headers=world.auth("owner1")))
    error(client.get(f"/v1/units/{unit1}", headers=tenant), 404, "unit_not_found")
    assert ok(client.get("/v1/units", headers=tenant)) == []
    # Their own (now revoked) grant stays readable to them: it is their data.
    assert ok(client.get(f"/v1/grants/{world.ids['grant1']}", headers=tenant))["status"] == "revoked"


def test_owner_authorises_only_people_they_may_see(client: TestClient, world: World) -> None:
    owner, unit1 = world.auth("owner1"), world.ids["unit1"]
    window = {"valid_from": iso(utcnow()), "valid_until": iso(utcnow() + timedelta(days=3))}
    error(client.post(f"/v1/units/{unit1}/tenants", headers=owner, json={"person_id": world.ids["tenant2"], **window}), 404, "person_not_found")
    error(client.post(f"/v1/units/{unit1}/tenants", headers=owner, json={"person_id": world.ids["owner2"], **window}), 404, "person_not_found")
    error(client.post(f"/v1/units/{world.ids['unit2']}/tenants", headers=owner, json={"person_id": world.ids["tenant1"], **window}), 404, "unit_not_found")
    # Owners register tenants, not staff or other owners.
    error(client.post("/v1/people", headers=owner, json={"site_id": world.ids["site_a"], "display_name": "X", "kind": "owner"}), 403, "forbidden_kind")
    error(client.post("/v1/people", headers=owner, json={"site_id": world.ids["site_b"], "display_name": "X", "kind": "tenant"}), 403, "forbidden_scope")


def test_entrance_doors_join_unit_door_groups(client: TestClient, world: World) -> None:
    admin, owner = world.auth("admin_a"), world.auth("owner1")
    groups = {u["id"]: u["door_group_id"] for u in ok(client.get("/v1/units", headers=admin))}

    def doors_of(unit_id: int) -> list[int]:
        return ok(client.get(f"/v1/door-groups/{groups[unit_id]}", headers=admin))["door_ids"]  # type: ignore[no-any-return]

    # The entrance that existed first is in the groups of units registered after it.
    new_unit = ok(client.post("/v1/units", headers=owner, json={"building_id": world.ids["building_a"], "label": "401"}), 201)
    groups[new_unit["id"]] = new_unit["door_group_id"]
    assert doors_of(new_unit["id"]) == [world.ids["entrance_a"]]
    assert doors_of(world.ids["unit1"]) == [world.ids["entrance_a"], world.ids["door1"]]

    # A new entrance joins every unit group of its building; other kinds and other buildings do not.
    back = ok(client.post("/v1/doors", headers=admin, json={"site_id": world.ids["site_a"], "building_id": world.ids["building_a"], "code": "b1-back", "name": "Back", "kind": "entrance"}), 201)
    bike = ok(client.post("/v1/doors", headers=admin, json={"site_id": world.ids["site_a"], "building_id": world.ids["building_a"], "code": "b1-bikes", "name": "Bikes", "kind": "other"}), 201)
    b2 = ok(client.post("/v1/buildings", headers=admin, json={"site_id": world.ids["site_a"], "code": "b2", "name": "B2"}), 201)
    ok(client.post("/v1/doors", headers=admin, json={"site_id": world.ids["site_a"], "building_id": b2["id"], "code": "b2-main", "name": "B2 main", "kind": "entrance"}), 201)
    flat = ok(client.post("/v1/doors", headers=admin, json={"site_id": world.ids["site_a"], "unit_id": new_unit["id"], "code": "u401", "name": "Flat 401", "kind": "unit_door"}), 201)
    assert flat["building_id"] == world.ids["building_a"]
    for unit_id in (world.ids["unit1"], world.ids["unit2"], new_unit["id"]):
        assert back["id"] in doors_of(unit_id) and bike["id"] not in doors_of(unit_id)
    assert doors_of(new_unit["id"]) == [world.ids["entrance_a"], back["id"], flat["id"]]
    assert flat["id"] not in doors_of(world.ids["unit1"])
    # So the existing tenant can use the new entrance at once.
    assert check(client, world, back["id"], world.ids["tenant1"])["allowed"]
    # The audit event of the door says which groups it joined.
    created = ok(client.get(f"/v1/audit/events?door_id={back['id']}", headers=admin))["events"][0]
    assert created["kind"] == "door.created"
    assert sorted(created["data"]["door_group_ids"]) == sorted(groups[u] for u in (world.ids["unit1"], world.ids["unit2"], new_unit["id"]))


def test_relabelled_unit_frees_its_label_and_group_name(client: TestClient, world: World) -> None:
    owner, admin = world.auth("owner1"), world.auth("admin_a")
    ok(client.patch(f"/v1/units/{world.ids['unit1']}", headers=owner, json={"label": "105"}))
    group1 = ok(client.get(f"/v1/units/{world.ids['unit1']}", headers=owner))["door_group_id"]
    assert ok(client.get(f"/v1/door-groups/{group1}", headers=admin))["name"] == "unit b1/105"
    again = ok(client.post("/v1/units", headers=owner, json={"building_id": world.ids["building_a"], "label": "101"}), 201)
    assert ok(client.get(f"/v1/door-groups/{again['door_group_id']}", headers=admin))["name"] == "unit b1/101"
    # An admin's group that happens to have a unit group's name does not block the unit.
    ok(client.post("/v1/door-groups", headers=admin, json={"site_id": world.ids["site_a"], "name": "unit b1/777"}), 201)
    unit = ok(client.post("/v1/units", headers=owner, json={"building_id": world.ids["building_a"], "label": "777"}), 201)
    assert ok(client.get(f"/v1/door-groups/{unit['door_group_id']}", headers=admin))["name"] == f"unit b1/777 (unit {unit['id']})"
