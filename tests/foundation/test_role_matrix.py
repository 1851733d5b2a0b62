"""Every registry, auth and audit endpoint against every role, with the exact status each must get.

The table below is checked against the application's routes: an endpoint under one of our prefixes
that has no row fails ``test_every_endpoint_has_a_row``, so whoever adds an endpoint decides, here,
who may call it. Denied calls must also leave no trace in the data: the audit chain may not grow.

Targets are owner1's side of site A (unit1, tenant1, grant1, door1, device1), so owner2 and the admin
of site B are the ones who must be refused; where a row must stay invisible they get 404, the same
as for an id that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from idsvc.audit.service import chain_head
from idsvc.auth import service as keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR, Principal
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.registry import people, schemas, units
from idsvc.registry.models import Device, Grant, Person, PersonKind, Status
from idsvc.registry.scope import unit_door_group_id
from tests.world import World

ROLES = ("district", "admin_a", "admin_b", "owner1", "owner2", "tenant1", "device1", "anonymous")

# The prefixes this matrix owns: every endpoint under them needs a row.
OURS = (
    "/v1/sites", "/v1/buildings", "/v1/units", "/v1/doors", "/v1/door-groups", "/v1/devices", "/v1/people",
    "/v1/vehicles", "/v1/grants", "/v1/access", "/v1/api-keys", "/v1/me", "/v1/audit", "/v1/jobs", "/v1/statistics",
)
# Endpoints of other issues (passes, the device API, faces), covered by their own role tests: path
# patterns, since some live under our prefixes. A new /v1 endpoint must fall under OURS (and get a
# row) or under a pattern here, on purpose: otherwise the tests below fail.
NOT_OURS = (
    r"/v1/passes\b",
    r"/v1/device/",
    r"/v1/faces\b",
    r"/v1/people/\{person_id\}/face\b",  # faces: consent and enrolment
    r"/v1/people/\{person_id\}/passes\b",  # passes: issuing
    r"/v1/units/\{unit_id\}/qr\.",  # passes: the unit's printed QR
    r"/v1/issuer-keys\b",  # revocation: withdrawing a pass issuer key
    r"/v1/status-lists\b",  # revocation: per-issuer status lists
    r"/v1/sync\b",  # the bridges' signed sync feed
    r"/v1/alarms\b",  # alarms: tests/alarms/test_roles.py
    r"/v1/sensors\b",  # alarms: sensors and emission data, same test
    r"/v1/trust-anchor$",  # passes: public on purpose, tests/foundation/test_device_docs.py
)


def not_ours(path: str) -> bool:
    return any(re.match(pattern, path) for pattern in NOT_OURS)


def expect(default: int, **overrides: int) -> dict[str, int]:
    table = {role: default for role in ROLES}
    table.update(overrides)
    table["anonymous"] = 401
    return table


def window(days: int = 30) -> dict[str, str]:
    now = utcnow()
    return {"valid_from": (now - timedelta(hours=1)).isoformat(), "valid_until": (now + timedelta(days=days)).isoformat()}


Prepare = Callable[[AppContext, dict[str, int]], dict[str, int]]
Body = Callable[[dict[str, int], str], dict[str, Any]]


@dataclass
class Row:
    method: str
    route: str  # the OpenAPI path
    url: str  # the route filled with ids, e.g. "/v1/units/{unit1}"
    expected: dict[str, int]
    body: Body | None = None
    prepare: Prepare | None = None  # runs before each role's call; may add ids for url and body
    name: str = field(default="")

    def __post_init__(self) -> None:
        self.name = self.name or f"{self.method} {self.url}"


# --- preparations: put the target back into the state the call needs, before every role -------------
def live_tenancy(ctx: AppContext, ids: dict[str, int]) -> dict[str, int]:
    with ctx.db.session() as s:
        live = s.scalar(select(Grant.id).where(Grant.unit_id == ids["unit1"], Grant.person_id == ids["tenant1"], Grant.status != Status.revoked))
        if live is None:
            body = schemas.TenancyIn(person_id=ids["tenant1"], **window())
            units.add_tenant(s, OPERATOR, ids["unit1"], body)
    return {}


def grant_status(grant: str, status: Status) -> Prepare:
    def prepare(ctx: AppContext, ids: dict[str, int]) -> dict[str, int]:
        with ctx.db.session() as s:
            s.get(Grant, ids[grant]).status = status  # type: ignore[union-attr]
        return {}

    return prepare


def grant1_status(status: Status) -> Prepare:
    return grant_status("grant1", status)


def tenant1_status(status: Status) -> Prepare:
    def prepare(ctx: AppContext, ids: dict[str, int]) -> dict[str, int]:
        with ctx.db.session() as s:
            s.get(Person, ids["tenant1"]).status = status  # type: ignore[union-attr]
        return {}

    return prepare


def device2_status(status: Status) -> Prepare:
    def prepare(ctx: AppContext, ids: dict[str, int]) -> dict[str, int]:
        with ctx.db.session() as s:
            s.get(Device, ids["device2"]).status = status  # type: ignore[union-attr]
        return {}

    return prepare


def spare_key(ctx: AppContext, ids: dict[str, int]) -> dict[str, int]:
    with ctx.db.session() as s:
        return {"spare_key": keys.issue_key(s, OPERATOR, Role.tenant, person_id=ids["tenant2"], label="spare").key.id}


def person_of_owner1(ctx: AppContext, ids: dict[str, int]) -> dict[str, int]:
    owner1 = Principal(role=Role.owner, site_id=ids["site_a"], person_id=ids["owner1"])
    with ctx.db.session() as s:
        person = people.create_person(s, owner1, schemas.PersonIn(site_id=ids["site_a"], display_name="Sub-tenant", kind=PersonKind.tenant))
        return {"registered": person.id}


def slug(tag: str) -> str:
    return tag.replace("_", "-")


ADMINS_CREATE = expect(403, district=201, admin_a=201)
ADMINS_READ = expect(403, district=200, admin_a=200)
ADMINS_ONLY_ROW = expect(404, district=200, admin_a=200)  # rows only site admins handle: invisible to others
UNIT1_READ = expect(404, district=200, admin_a=200, owner1=200, tenant1=200)
UNIT1_MANAGE = expect(404, district=200, admin_a=200, owner1=200, tenant1=403)  # the tenant sees the unit, may not manage it
SITE_MEMBERS = expect(200, admin_b=404, device1=404)

ROWS = [
    # sites and buildings
    Row("POST", "/v1/sites", "/v1/sites", expect(403, district=201), body=lambda i, t: {"code": f"s-{slug(t)}", "name": "New site"}),
    Row("GET", "/v1/sites", "/v1/sites", expect(200, device1=403)),
    Row("GET", "/v1/sites/{site_id}", "/v1/sites/{site_a}", SITE_MEMBERS),
    # tenancy figures for the police registration: the site's admins
    Row("GET", "/v1/sites/{site_id}/tenancies/daily", "/v1/sites/{site_a}/tenancies/daily?from=2026-12-01&to=2026-12-07", expect(403, district=200, admin_a=200, admin_b=404, device1=404)),
    Row("GET", "/v1/statistics", "/v1/statistics", expect(403, district=200, admin_a=200, admin_b=200)),
    Row("GET", "/v1/statistics", "/v1/statistics?site_id={site_a}", expect(403, district=200, admin_a=200, admin_b=404)),
    Row("GET", "/v1/sites/{site_id}/registrations/overdue", "/v1/sites/{site_a}/registrations/overdue", expect(403, district=200, admin_a=200, admin_b=404, device1=404)),
    Row("PATCH", "/v1/sites/{site_id}", "/v1/sites/{site_a}", expect(403, district=200, admin_a=200, admin_b=404, device1=404), body=lambda i, t: {"name": f"Site {t}"}),
    Row("POST", "/v1/buildings", "/v1/buildings", expect(403, district=201, admin_a=201, admin_b=404, device1=404), body=lambda i, t: {"site_id": i["site_a"], "code": f"b-{slug(t)}", "name": "B"}),
    Row("GET", "/v1/buildings", "/v1/buildings?site_id={site_a}", SITE_MEMBERS),
    Row("GET", "/v1/buildings/{building_id}", "/v1/buildings/{building_a}", SITE_MEMBERS),
    # units and tenancies
    Row("POST", "/v1/units", "/v1/units", expect(403, district=201, admin_a=201, admin_b=404, owner1=201, owner2=201, device1=404), body=lambda i, t: {"building_id": i["building_a"], "label": f"u-{t}"}),
    Row("GET", "/v1/units", "/v1/units", expect(200, device1=403)),
    Row("GET", "/v1/units/{unit_id}", "/v1/units/{unit1}", UNIT1_READ),
    Row("PATCH", "/v1/units/{unit_id}", "/v1/units/{unit1}", UNIT1_MANAGE, body=lambda i, t: {"kind": "shop"}),
    # The other side of site A: owner2's unit, its tenant and grant are invisible to owner1 and tenant1.
    Row("GET", "/v1/units/{unit_id}", "/v1/units/{unit2}", expect(404, district=200, admin_a=200, owner2=200), name="GET owner2's unit"),
    Row("PATCH", "/v1/units/{unit_id}", "/v1/units/{unit2}", expect(404, district=200, admin_a=200, owner2=200), body=lambda i, t: {"kind": "shop"}, name="PATCH owner2's unit"),
    Row("GET", "/v1/units/{unit_id}/tenants", "/v1/units/{unit2}/tenants", expect(404, district=200, admin_a=200, owner2=200), name="GET owner2's tenants"),
    Row("POST", "/v1/units/{unit_id}/tenants", "/v1/units/{unit1}/tenants", expect(404, district=201, admin_a=201, owner1=201, tenant1=403), body=lambda i, t: {"person_id": i["tenant1"], **window()}),
    Row("GET", "/v1/units/{unit_id}/tenants", "/v1/units/{unit1}/tenants", UNIT1_MANAGE),
    Row("DELETE", "/v1/units/{unit_id}/tenants/{person_id}", "/v1/units/{unit1}/tenants/{tenant1}", UNIT1_MANAGE, prepare=live_tenancy),
    # doors, door groups, devices
    Row("POST", "/v1/doors", "/v1/doors", ADMINS_CREATE, body=lambda i, t: {"site_id": i["site_a"], "code": f"d-{slug(t)}", "name": "Door", "kind": "other"}),
    Row("GET", "/v1/doors", "/v1/doors?site_id={site_a}", ADMINS_READ),
    Row("GET", "/v1/doors/{door_id}", "/v1/doors/{door1}", ADMINS_ONLY_ROW),
    Row("PATCH", "/v1/doors/{door_id}", "/v1/doors/{door1}", ADMINS_ONLY_ROW, body=lambda i, t: {"name": f"Door {t}"}),
    Row("POST", "/v1/door-groups", "/v1/door-groups", ADMINS_CREATE, body=lambda i, t: {"site_id": i["site_a"], "name": f"g-{t}", "door_ids": [i["door1"]]}),
    Row("GET", "/v1/door-groups", "/v1/door-groups?site_id={site_a}", ADMINS_READ),
    Row("GET", "/v1/door-groups/{group_id}", "/v1/door-groups/{group1}", ADMINS_ONLY_ROW),
    Row("PUT", "/v1/door-groups/{group_id}/doors", "/v1/door-groups/{group1}/doors", ADMINS_ONLY_ROW, body=lambda i, t: {"door_ids": [i["entrance_a"], i["door1"]]}),
    Row("POST", "/v1/devices", "/v1/devices", ADMINS_CREATE, body=lambda i, t: {"site_id": i["site_a"], "code": f"dev-{slug(t)}", "name": "Lock", "kind": "lock", "door_ids": [i["door1"]]}),
    Row("GET", "/v1/devices", "/v1/devices?site_id={site_a}", ADMINS_READ),
    Row("GET", "/v1/devices/{device_id}", "/v1/devices/{device1}", expect(404, district=200, admin_a=200, device1=200)),
    Row("GET", "/v1/devices/{device_id}", "/v1/devices/{device2}", ADMINS_ONLY_ROW, name="GET another device"),
    Row("PATCH", "/v1/devices/{device_id}", "/v1/devices/{device1}", ADMINS_ONLY_ROW, body=lambda i, t: {"name": f"Lock {t}"}),
    # (revocation verbs on devices; device2, so that revoking does not take device1's own key away)
    Row("POST", "/v1/devices/{item_id}/suspend", "/v1/devices/{device2}/suspend", ADMINS_ONLY_ROW, body=lambda i, t: {"reason": "r"}, prepare=device2_status(Status.active)),
    Row("POST", "/v1/devices/{item_id}/reinstate", "/v1/devices/{device2}/reinstate", ADMINS_ONLY_ROW, body=lambda i, t: {"reason": "r"}, prepare=device2_status(Status.suspended)),
    Row("POST", "/v1/devices/{item_id}/revoke", "/v1/devices/{device2}/revoke", ADMINS_ONLY_ROW, body=lambda i, t: {"reason": "r"}, prepare=device2_status(Status.active)),
    # people and vehicles
    Row("POST", "/v1/people", "/v1/people", expect(403, district=201, admin_a=201, owner1=201, owner2=201), body=lambda i, t: {"site_id": i["site_a"], "display_name": f"P {t}", "kind": "tenant"}),
    Row("GET", "/v1/people", "/v1/people?site_id={site_a}", expect(200, admin_b=403, device1=403)),
    Row("GET", "/v1/people/{person_id}", "/v1/people/{tenant1}", UNIT1_READ),
    Row("GET", "/v1/people/{person_id}", "/v1/people/{tenant2}", expect(404, district=200, admin_a=200, owner2=200), name="GET owner2's tenant"),
    Row("PATCH", "/v1/people/{person_id}", "/v1/people/{tenant1}", expect(404, district=200, admin_a=200, owner1=403, tenant1=200), body=lambda i, t: {"phone": "+86 138 0000 0000"}),
    Row("PATCH", "/v1/people/{person_id}", "/v1/people/{registered}", expect(404, district=200, admin_a=200, owner1=200), body=lambda i, t: {"phone": "+86 138 0000 0001"}, prepare=person_of_owner1, name="PATCH a person owner1 registered"),
    # (revocation verbs on people: owners and tenants see tenant1 but may not change their status)
    Row("POST", "/v1/people/{item_id}/suspend", "/v1/people/{tenant1}/suspend", UNIT1_MANAGE | {"owner1": 403}, body=lambda i, t: {"reason": "r"}, prepare=tenant1_status(Status.active)),
    Row("POST", "/v1/people/{item_id}/reinstate", "/v1/people/{tenant1}/reinstate", UNIT1_MANAGE | {"owner1": 403}, body=lambda i, t: {"reason": "r"}, prepare=tenant1_status(Status.suspended)),
    Row("POST", "/v1/people/{item_id}/revoke", "/v1/people/{tenant1}/revoke", UNIT1_MANAGE | {"owner1": 403}, body=lambda i, t: {"reason": "r"}, prepare=tenant1_status(Status.active)),
    # a person's export and erasure (privacy): the site's admins, on the person's request
    Row("POST", "/v1/people/{person_id}/export", "/v1/people/{tenant1}/export", expect(404, district=200, admin_a=200, owner1=403, tenant1=403), body=lambda i, t: {"requester": "the person", "purpose": "access request"}),
    Row("POST", "/v1/people/{person_id}/erase", "/v1/people/{registered}/erase", expect(404, district=200, admin_a=200, owner1=403), body=lambda i, t: {"requester": "the person", "purpose": "moved out"}, prepare=person_of_owner1, name="erase a person owner1 registered"),
    Row("POST", "/v1/vehicles", "/v1/vehicles", ADMINS_CREATE, body=lambda i, t: {"site_id": i["site_a"], "plate": f"AB{ROLES.index(t)}00X"}),
    Row("GET", "/v1/vehicles", "/v1/vehicles?site_id={site_a}", ADMINS_READ),
    Row("GET", "/v1/vehicles/{vehicle_id}", "/v1/vehicles/{vehicle1}", expect(404, district=200, admin_a=200, tenant1=200)),
    # grants and the access check
    Row("POST", "/v1/grants", "/v1/grants", expect(404, district=201, admin_a=201), body=lambda i, t: {"door_group_id": i["group1"], "person_id": i["tenant1"], **window()}),
    Row("GET", "/v1/grants", "/v1/grants", expect(200, device1=403)),
    Row("GET", "/v1/grants/{grant_id}", "/v1/grants/{grant1}", UNIT1_READ),
    Row("GET", "/v1/grants/{grant_id}", "/v1/grants/{grant2}", expect(404, district=200, admin_a=200, owner2=200), name="GET owner2's tenant's grant"),
    Row("POST", "/v1/grants/{grant_id}/suspend", "/v1/grants/{grant2}/suspend", expect(404, district=200, admin_a=200, owner2=200), body=lambda i, t: {"reason": "r"}, prepare=grant_status("grant2", Status.active), name="suspend owner2's tenant's grant"),
    Row("POST", "/v1/grants/{grant_id}/suspend", "/v1/grants/{grant1}/suspend", UNIT1_MANAGE, body=lambda i, t: {"reason": "r"}, prepare=grant1_status(Status.active)),
    Row("POST", "/v1/grants/{grant_id}/reinstate", "/v1/grants/{grant1}/reinstate", UNIT1_MANAGE, body=lambda i, t: {"reason": "r"}, prepare=grant1_status(Status.suspended)),
    Row("POST", "/v1/grants/{grant_id}/revoke", "/v1/grants/{grant1}/revoke", UNIT1_MANAGE, body=lambda i, t: {"reason": "r"}, prepare=grant1_status(Status.active)),
    Row("POST", "/v1/access/check", "/v1/access/check", ADMINS_ONLY_ROW, body=lambda i, t: {"door_id": i["door1"], "person_id": i["tenant1"]}),
    # api keys and me
    Row("POST", "/v1/api-keys", "/v1/api-keys", ADMINS_CREATE, body=lambda i, t: {"role": "tenant", "person_id": i["tenant2"], "label": t}),
    Row("GET", "/v1/api-keys", "/v1/api-keys?site_id={site_a}", ADMINS_READ),
    Row("GET", "/v1/api-keys", "/v1/api-keys", expect(403, district=200, admin_a=200, admin_b=200), name="GET /v1/api-keys of the key's scope"),
    Row("DELETE", "/v1/api-keys/{key_id}", "/v1/api-keys/{spare_key}", ADMINS_READ, prepare=spare_key),
    Row("GET", "/v1/me", "/v1/me", expect(200)),
    # audit
    Row("GET", "/v1/audit/events", "/v1/audit/events", expect(200, device1=403)),
    Row("GET", "/v1/audit/events.csv", "/v1/audit/events.csv", expect(200, device1=403)),
    Row("GET", "/v1/audit/head", "/v1/audit/head", expect(403, district=200, admin_a=200, admin_b=200)),
    Row("GET", "/v1/audit/verify", "/v1/audit/verify", expect(403, district=200)),
    # the periodic jobs: district admins (the operators of the installation)
    Row("GET", "/v1/jobs", "/v1/jobs", expect(403, district=200)),
    Row("POST", "/v1/jobs/{name}/run", "/v1/jobs/retention/run?dry_run=true", expect(403, district=200)),
]


def test_every_endpoint_has_a_row(client: TestClient) -> None:
    paths = client.app.openapi()["paths"]
    routes = {(method.upper(), path) for path, operations in paths.items() for method in operations if path.startswith(OURS) and not not_ours(path)}
    assert len(routes) >= 40  # the discovery itself works
    covered = {(row.method, row.route) for row in ROWS}
    assert routes - covered == set(), "endpoints without a row in the role matrix: add them to ROWS"
    assert covered - routes == set(), "rows for endpoints that do not exist"
    unclassified = [p for p in paths if p.startswith("/v1/") and not p.startswith(OURS) and not not_ours(p)]
    assert unclassified == [], "new /v1 endpoints: add their prefix to OURS (with rows) or a pattern to NOT_OURS (tested elsewhere)"


@pytest.fixture
def ids(ctx: AppContext, world: World) -> dict[str, int]:
    out = dict(world.ids)
    with ctx.db.session() as s:
        out["group1"] = unit_door_group_id(s, out["unit1"])  # type: ignore[assignment]
        vehicle = people.create_vehicle(s, OPERATOR, schemas.VehicleIn(site_id=out["site_a"], plate="粤B·12345", owner_person_id=out["tenant1"]))
        out["vehicle1"] = vehicle.id
    return out


def call(client: TestClient, world: World, role: str, method: str, url: str, body: dict[str, Any] | None) -> int:
    headers = world.auth(role) if role != "anonymous" else {}
    return client.request(method, url, headers=headers, json=body).status_code


# Rows run in a few groups, one world each (building it is the slow part).
GROUPS = {
    "sites": "site structure", "buildings": "site structure", "doors": "site structure", "door-groups": "site structure", "devices": "site structure",
    "units": "units", "statistics": "units", "people": "people", "vehicles": "people", "grants": "grants", "access": "grants",
    "api-keys": "keys and audit", "me": "keys and audit", "audit": "keys and audit", "jobs": "keys and audit",
}


def section(row: Row) -> str:
    return GROUPS[row.route.split("/")[2]]


SECTIONS = sorted({section(row) for row in ROWS})


@pytest.mark.parametrize("name", SECTIONS)
def test_role_matrix(name: str, ctx: AppContext, client: TestClient, world: World, ids: dict[str, int]) -> None:
    """Each row puts its target back into the state it needs (prepare) before every role's call."""
    wrong: dict[str, dict[str, tuple[int, int]]] = {}
    traces: list[str] = []
    head = None
    for row in (r for r in ROWS if section(r) == name):
        for role in ROLES:
            extra = row.prepare(ctx, ids) if row.prepare else {}
            all_ids = {**ids, **extra}
            if head is None or row.prepare:
                with ctx.db.session() as s:
                    head = chain_head(s)
            status = call(client, world, role, row.method, row.url.format(**all_ids), row.body(all_ids, role) if row.body else None)
            with ctx.db.session() as s:
                before, head = head, chain_head(s)
            if status != row.expected[role]:
                wrong.setdefault(row.name, {})[role] = (status, row.expected[role])
            if status >= 400 and head != before:
                traces.append(f"{row.name} as {role}")
    assert wrong == {}, "(got, expected) per row and role"
    assert traces == [], "refused calls must change nothing (the audit trail grew)"


# --- what list endpoints show: each role only its own rows -----------------------------------------------
# (url, field holding the id, world names the ids are of, {role: names expected})
LISTS = [
    ("/v1/sites", "id", ("site_",), {"district": {"site_a", "site_b"}, "admin_a": {"site_a"}, "admin_b": {"site_b"}, "owner1": {"site_a"}, "tenant1": {"site_a"}}),
    ("/v1/units", "id", ("unit",), {"district": {"unit1", "unit2"}, "admin_a": {"unit1", "unit2"}, "admin_b": set(), "owner1": {"unit1"}, "owner2": {"unit2"}, "tenant1": {"unit1"}}),
    ("/v1/units?site_id={site_a}", "id", ("unit",), {"admin_b": set(), "owner2": {"unit2"}}),
    ("/v1/grants", "id", ("grant",), {"district": {"grant1", "grant2"}, "admin_a": {"grant1", "grant2"}, "admin_b": set(), "owner1": {"grant1"}, "owner2": {"grant2"}, "tenant1": {"grant1"}}),
    # A filter narrows what a caller may see; it never widens it.
    ("/v1/grants?unit_id={unit2}", "id", ("grant",), {"owner1": set(), "tenant1": set(), "owner2": {"grant2"}}),
    ("/v1/grants?person_id={tenant2}", "id", ("grant",), {"owner1": set(), "tenant1": set(), "admin_b": set()}),
    ("/v1/people?site_id={site_a}", "id", ("owner", "tenant"), {
        "admin_a": {"owner1", "owner2", "tenant1", "tenant2"}, "owner1": {"owner1", "tenant1"}, "owner2": {"owner2", "tenant2"}, "tenant1": {"tenant1"},
    }),
    ("/v1/people?site_id={site_b}", "id", ("owner", "tenant"), {"owner1": set(), "tenant1": set()}),
    ("/v1/devices?site_id={site_a}", "id", ("device",), {"admin_a": {"device1", "device2"}}),
    ("/v1/audit/events?kind=tenancy.started", "unit_id", ("unit",), {"district": {"unit1", "unit2"}, "admin_b": set(), "owner1": {"unit1"}, "owner2": {"unit2"}, "tenant1": {"unit1"}}),
]


def test_lists_show_only_own_rows(client: TestClient, world: World, ids: dict[str, int]) -> None:
    wrong = {}
    for url, key, kinds, expected in LISTS:
        names = {value: name for name, value in ids.items() if name.startswith(kinds)}
        for role, want in expected.items():
            response = client.get(url.format(**ids), headers=world.auth(role))
            assert response.status_code == 200, (url, role, response.text)
            payload = response.json()
            rows = payload["events"] if isinstance(payload, dict) else payload
            seen = sorted(names.get(r[key], f"other:{r[key]}") for r in rows)
            if seen != sorted(want):
                wrong[(url, role)] = (seen, sorted(want))
    assert wrong == {}, "(seen, expected) per list and role"
    # A device's key is bound to its own doors.
    me = client.get("/v1/me", headers=world.auth("device1")).json()
    assert me["role"] == "device" and me["device_id"] == world.ids["device1"]
    assert me["door_ids"] == [world.ids["door1"]]


def test_healthz_needs_no_key(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200


def test_bad_credentials_are_401_with_the_error_body(client: TestClient) -> None:
    for header, code in (
        ({"Authorization": "Bearer idsvc_not-a-key"}, "invalid_credentials"),
        ({"X-API-Key": "nope"}, "invalid_credentials"),
        ({"Authorization": "Basic abc"}, "missing_credentials"),
        ({}, "missing_credentials"),
    ):
        response = client.get("/v1/me", headers=header)
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == code, header
        assert response.headers["www-authenticate"] == "Bearer"
