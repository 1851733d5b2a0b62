"""A listing without `site_id` covers the caller's scope: a site admin's key its site, an owner's or a
tenant's their own rows, a district admin's every site. Checked on every collection GET of the API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.errors import Forbidden
from idsvc.registry.scope import admin_listing
from tests.world import World


def _collections(client: TestClient) -> list[str]:
    """Every GET without path parameters that answers a list and can be narrowed to a site (`site_id`):
    the registry's collections and their like. (District-wide lists, such as the jobs, have their own role tests.)"""
    spec = client.get("/openapi.json").json()
    found = []
    for path, item in spec["paths"].items():
        op = item.get("get")
        if op is None or "{" in path or not path.startswith("/v1/"):
            continue
        schema = op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("type") == "array" and any(p["name"] == "site_id" and p["in"] == "query" for p in op.get("parameters", [])):
            found.append(path)
    return found


def _sites(rows: list[dict[str, Any]]) -> set[int]:
    return {row["site_id"] for row in rows if "site_id" in row}


def test_collections_default_to_the_callers_scope(client: TestClient, world: World) -> None:
    site_a, site_b = world.ids["site_a"], world.ids["site_b"]
    collections = _collections(client)
    assert {"/v1/people", "/v1/doors", "/v1/door-groups", "/v1/devices", "/v1/vehicles", "/v1/buildings"} <= set(collections)
    for path in collections:
        seen_by_site_admins: set[int] = set()
        for who, site in (("admin_a", site_a), ("admin_b", site_b)):
            answer = client.get(path, headers=world.auth(who))
            assert answer.status_code == 200, (path, who, answer.text)
            assert _sites(answer.json()) <= {site}, (path, who)
            seen_by_site_admins |= _sites(answer.json())
            named = client.get(path, headers=world.auth(who), params={"site_id": site})
            if named.status_code == 200:
                assert named.json() == answer.json(), (path, who)  # the default is exactly the key's site
        everything = client.get(path, headers=world.auth("district"))
        assert everything.status_code == 200, (path, everything.text)
        assert _sites(everything.json()) >= seen_by_site_admins, path  # a district admin's scope is every site
        # Another site named explicitly stays refused or empty: the default never widens a key's scope.
        other = client.get(path, headers=world.auth("admin_a"), params={"site_id": site_b})
        assert other.status_code in (403, 404, 422) or _sites(other.json()) <= {site_a}, (path, other.text)


def test_people_of_an_owner_and_a_tenant_without_site_id(client: TestClient, world: World) -> None:
    owner = client.get("/v1/people", headers=world.auth("owner1"))
    assert owner.status_code == 200, owner.text
    assert {p["id"] for p in owner.json()} >= {world.ids["owner1"], world.ids["tenant1"]}
    assert world.ids["tenant2"] not in {p["id"] for p in owner.json()}  # the other landlord's tenant
    tenant = client.get("/v1/people", headers=world.auth("tenant1"))
    assert tenant.status_code == 200 and [p["id"] for p in tenant.json()] == [world.ids["tenant1"]]
    assert client.get("/v1/doors", headers=world.auth("owner1")).status_code == 403  # admins' listings stay admins'
    assert client.get("/v1/doors", headers=world.auth("device1")).status_code == 403


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.district_admin])
def test_an_admin_listing_of_every_site_is_for_district_admins_only(role: Role) -> None:
    """A key without a site asks for no site: that would be every site, so only a district admin may."""
    with pytest.raises(Forbidden) as refused:
        admin_listing(Principal(role=role, site_id=None), None)
    assert refused.value.code == "forbidden_role"
    assert admin_listing(Principal(role=Role.district_admin), None) is None
