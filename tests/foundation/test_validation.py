"""Bad input on every write endpoint: a 4xx with the one error shape and a specific code, never a 500.

Each case names the status, the error code and (for 422) the field the details must point at. The
client does not re-raise server exceptions, so a 500 shows up as a failed case rather than a crash.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from idsvc.app import create_app
from idsvc.audit.service import chain_head
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.registry import people, schemas
from idsvc.registry.models import PersonKind
from idsvc.registry.scope import unit_door_group_id
from tests.foundation.test_role_matrix import OURS, not_ours
from tests.world import World

BIG = 2**31  # one past the largest row id


@pytest.fixture
def raw(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def ids(ctx: AppContext, world: World) -> dict[str, Any]:
    out: dict[str, Any] = dict(world.ids)
    with ctx.db.session() as s:
        out["group1"] = unit_door_group_id(s, out["unit1"])
        out["person_b"] = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=out["site_b"], display_name="B", kind=PersonKind.tenant)).id
        out["ref_person"] = people.create_person(
            s, OPERATOR, schemas.PersonIn(site_id=out["site_a"], display_name="R", kind=PersonKind.staff, external_ref="HR-1")
        ).id
        people.create_vehicle(s, OPERATOR, schemas.VehicleIn(site_id=out["site_a"], plate="粤B·12345"))
    out["door_b"] = world.ids["entrance_b"]
    return out


@dataclasses.dataclass
class Raw:
    content: bytes
    content_type: str = "application/json"


@dataclasses.dataclass
class Case:
    name: str
    method: str
    url: str
    body: Any
    status: int
    code: str
    field: str | None = None  # for 422: a details entry whose field contains this


def later(days: float) -> str:
    return (utcnow() + timedelta(days=days)).isoformat()


def naive(days: float) -> str:
    return (utcnow() + timedelta(days=days)).replace(tzinfo=None).isoformat()


def tenancy(i: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"person_id": i["tenant1"], "valid_from": later(0), "valid_until": later(30), **over}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def sched(**over: Any) -> dict[str, Any]:
    return {"days": [0], "start": "08:00", "end": "18:00", **over}


def cases(i: dict[str, Any]) -> dict[str, list[Case]]:
    site, bld, unit1 = i["site_a"], i["building_a"], i["unit1"]
    c = Case
    return {
        "sites": [
            c("code too short", "POST", "/v1/sites", {"code": "a", "name": "X"}, 422, "invalid_input", "body.code"),
            c("code too long", "POST", "/v1/sites", {"code": "a" * 41, "name": "X"}, 422, "invalid_input", "body.code"),
            c("code with space", "POST", "/v1/sites", {"code": "my site", "name": "X"}, 422, "invalid_input", "body.code"),
            c("code with NUL", "POST", "/v1/sites", {"code": "ab\x00", "name": "X"}, 422, "invalid_input", "body.code"),
            c("name empty", "POST", "/v1/sites", {"code": "new", "name": ""}, 422, "invalid_input", "body.name"),
            c("name blank", "POST", "/v1/sites", {"code": "new", "name": "   "}, 422, "invalid_input", "body.name"),
            c("name too long", "POST", "/v1/sites", {"code": "new", "name": "x" * 201}, 422, "invalid_input", "body.name"),
            c("name with NUL", "POST", "/v1/sites", {"code": "new", "name": "a\x00b"}, 422, "invalid_input", "body.name"),
            c("name not a string", "POST", "/v1/sites", {"code": "new", "name": 5}, 422, "invalid_input", "body.name"),
            c("unknown time zone", "POST", "/v1/sites", {"code": "new", "name": "X", "timezone": "Mars/Olympus"}, 422, "invalid_input", "body.timezone"),
            c("time zone as a path", "POST", "/v1/sites", {"code": "new", "name": "X", "timezone": "../../etc/passwd"}, 422, "invalid_input", "body.timezone"),
            c("time zone offset", "POST", "/v1/sites", {"code": "new", "name": "X", "timezone": "+08:00"}, 422, "invalid_input", "body.timezone"),
            c("duplicate code", "POST", "/v1/sites", {"code": "site-a", "name": "X"}, 409, "duplicate_code"),
            c("duplicate code in capitals", "POST", "/v1/sites", {"code": "SITE-A", "name": "X"}, 409, "duplicate_code"),
            c("settings with NaN", "POST", "/v1/sites", Raw(b'{"code": "new", "name": "X", "settings": {"t": NaN}}'), 422, "invalid_input", "body.settings"),
            c("settings with Infinity", "POST", "/v1/sites", Raw(b'{"code": "new", "name": "X", "settings": {"t": [1, -Infinity]}}'), 422, "invalid_input", "body.settings"),
            c("settings key not Unicode", "POST", "/v1/sites", Raw(b'{"code": "new", "name": "X", "settings": {"\\udc00": 1}}'), 422, "invalid_input", "body.settings"),
            c("settings value not Unicode", "POST", "/v1/sites", Raw(b'{"code": "new", "name": "X", "settings": {"a": ["\\ud800"]}}'), 422, "invalid_input", "body.settings"),
            c("name not Unicode", "POST", "/v1/sites", Raw(b'{"code": "new", "name": "x\\ud800"}'), 422, "invalid_input", "body.name"),
            c("settings nested too deep", "POST", "/v1/sites", {"code": "new", "name": "X", "settings": {"t": nested(40)}}, 422, "invalid_input", "body.settings"),
            c("patch: settings with NaN", "PATCH", f"/v1/sites/{site}", Raw(b'{"settings": {"t": NaN}}'), 422, "invalid_input", "body.settings"),
            c("unknown field", "POST", "/v1/sites", {"code": "new", "name": "X", "colour": "red"}, 422, "invalid_input", "body.colour"),
            c("missing fields", "POST", "/v1/sites", {}, 422, "invalid_input", "body.code"),
            c("body is a list", "POST", "/v1/sites", [{"code": "new", "name": "X"}], 422, "invalid_input", "body"),
            c("body is a string", "POST", "/v1/sites", "site", 422, "invalid_input", "body"),
            c("malformed JSON", "POST", "/v1/sites", Raw(b'{"code": "new", "name": '), 422, "invalid_input", "body"),
            c("not UTF-8", "POST", "/v1/sites", Raw(b'{"code": "\xff\xfe"}'), 400, "bad_request"),
            c("form instead of JSON", "POST", "/v1/sites", Raw(b"code=new&name=X", "application/x-www-form-urlencoded"), 422, "invalid_input", "body"),
            c("patch: bad zone", "PATCH", f"/v1/sites/{site}", {"timezone": "Asia/Nowhere"}, 422, "invalid_input", "body.timezone"),
            c("patch: unknown site", "PATCH", "/v1/sites/999999", {"name": "X"}, 404, "site_not_found"),
            c("patch: id not a number", "PATCH", "/v1/sites/abc", {"name": "X"}, 422, "invalid_input", "path.site_id"),
            c("patch: id out of range", "PATCH", f"/v1/sites/{BIG}", {"name": "X"}, 422, "invalid_input", "path.site_id"),
        ],
        "buildings": [
            c("unknown site", "POST", "/v1/buildings", {"site_id": 999999, "code": "b9", "name": "X"}, 404, "site_not_found"),
            c("site id zero", "POST", "/v1/buildings", {"site_id": 0, "code": "b9", "name": "X"}, 422, "invalid_input", "body.site_id"),
            c("site id too big", "POST", "/v1/buildings", {"site_id": 10**20, "code": "b9", "name": "X"}, 422, "invalid_input", "body.site_id"),
            c("site id a string", "POST", "/v1/buildings", {"site_id": "one", "code": "b9", "name": "X"}, 422, "invalid_input", "body.site_id"),
            c("site id a float", "POST", "/v1/buildings", {"site_id": 1.5, "code": "b9", "name": "X"}, 422, "invalid_input", "body.site_id"),
            c("duplicate code", "POST", "/v1/buildings", {"site_id": site, "code": "B1", "name": "X"}, 409, "duplicate_code"),
            c("list: site id out of range", "GET", f"/v1/buildings?site_id={BIG}", None, 422, "invalid_input", "query.site_id"),
            c("list: site id zero", "GET", "/v1/buildings?site_id=0", None, 422, "invalid_input", "query.site_id"),
        ],
        "units": [
            c("label too long", "POST", "/v1/units", {"building_id": bld, "label": "1" * 41}, 422, "invalid_input", "body.label"),
            c("label starts with a sign", "POST", "/v1/units", {"building_id": bld, "label": "!101"}, 422, "invalid_input", "body.label"),
            c("label with newline", "POST", "/v1/units", {"building_id": bld, "label": "1\n2"}, 422, "invalid_input", "body.label"),
            c("duplicate label", "POST", "/v1/units", {"building_id": bld, "label": "101"}, 409, "duplicate_label"),
            c("unknown building", "POST", "/v1/units", {"building_id": 999999, "label": "9"}, 404, "building_not_found"),
            c("unknown owner", "POST", "/v1/units", {"building_id": bld, "label": "9", "owner_id": 999999}, 404, "person_not_found"),
            c("owner of another site", "POST", "/v1/units", {"building_id": bld, "label": "9", "owner_id": i["person_b"]}, 422, "person_not_in_site"),
            c("unknown kind", "POST", "/v1/units", {"building_id": bld, "label": "9", "kind": "castle"}, 422, "invalid_input", "body.kind"),
            c("patch: duplicate label", "PATCH", f"/v1/units/{unit1}", {"label": "102"}, 409, "duplicate_label"),
            c("patch: unknown owner", "PATCH", f"/v1/units/{unit1}", {"owner_id": 999999}, 404, "person_not_found"),
            c("patch: code is not writable", "PATCH", f"/v1/units/{unit1}", {"code": "AAAAAAAAAAAA"}, 422, "invalid_input", "body.code"),
            c("patch: unknown unit", "PATCH", "/v1/units/999999", {"kind": "shop"}, 404, "unit_not_found"),
            c("tenancy ends before it starts", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, valid_from=later(2), valid_until=later(1)), 422, "invalid_input", "body"),
            c("tenancy of zero length", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, valid_until=tenancy(i)["valid_from"]), 422, "invalid_input", "body"),
            c("tenancy with naive start", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, valid_from=naive(0)), 422, "invalid_input", "body.valid_from"),
            c("tenancy with a date only", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, valid_until="2030-01-01"), 422, "invalid_input", "body.valid_until"),
            c("tenancy from year 1 (+05:00)", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, valid_from="0001-01-01T00:00:00+05:00"), 422, "invalid_input", "body.valid_from"),
            c("tenancy until the end of time (-05:00)", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, valid_until="9999-12-31T23:00:00-05:00"), 422, "invalid_input", "body.valid_until"),
            c("tenancy with garbage time", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, valid_until="soon"), 422, "invalid_input", "body.valid_until"),
            c("tenancy of unknown person", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, person_id=999999), 404, "person_not_found"),
            c("tenancy of another site's person", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, person_id=i["person_b"]), 422, "subject_not_in_site"),
            c("tenancy with zero uses", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, max_uses=0), 422, "invalid_input", "body.max_uses"),
            c("tenancy on unknown unit", "POST", "/v1/units/999999/tenants", tenancy(i), 404, "unit_not_found"),
            c("schedule day 7", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, schedule=[sched(days=[7])]), 422, "invalid_input", "body.schedule.0.days"),
            c("schedule no days", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, schedule=[sched(days=[])]), 422, "invalid_input", "body.schedule.0.days"),
            c("schedule repeated day", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, schedule=[sched(days=[1, 1])]), 422, "invalid_input", "body.schedule.0"),
            c("schedule hour 25", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, schedule=[sched(start="25:00")]), 422, "invalid_input", "body.schedule.0.start"),
            c("schedule 8:00 without zero", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, schedule=[sched(start="8:00")]), 422, "invalid_input", "body.schedule.0.start"),
            c("schedule starts at 24:00", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, schedule=[sched(start="24:00", end="06:00")]), 422, "invalid_input", "body.schedule.0"),
            c("schedule empty window", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, schedule=[sched(end="08:00")]), 422, "invalid_input", "body.schedule.0"),
            c("schedule unknown field", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, schedule=[sched(tz="UTC")]), 422, "invalid_input", "body.schedule.0.tz"),
            c("schedule too many windows", "POST", f"/v1/units/{unit1}/tenants", tenancy(i, schedule=[sched()] * 29), 422, "invalid_input", "body.schedule"),
            c("end tenancy nobody holds", "DELETE", f"/v1/units/{unit1}/tenants/{i['tenant2']}", None, 404, "tenancy_not_found"),
            c("end tenancy with empty reason", "DELETE", f"/v1/units/{unit1}/tenants/{i['tenant1']}?reason=", None, 422, "invalid_input", "query.reason"),
            c("end tenancy with long reason", "DELETE", f"/v1/units/{unit1}/tenants/{i['tenant1']}?reason={'x' * 501}", None, 422, "invalid_input", "query.reason"),
            c("end tenancy with NUL reason", "DELETE", f"/v1/units/{unit1}/tenants/{i['tenant1']}?reason=a%00b", None, 422, "invalid_input", "query.reason"),
        ],
        "doors": [
            c("duplicate code", "POST", "/v1/doors", {"site_id": site, "code": "u101", "name": "X", "kind": "other"}, 409, "duplicate_code"),
            c("unknown kind", "POST", "/v1/doors", {"site_id": site, "code": "d9", "name": "X", "kind": "window"}, 422, "invalid_input", "body.kind"),
            c("unit of another site", "POST", "/v1/doors", {"site_id": i["site_b"], "code": "d9", "name": "X", "kind": "unit_door", "unit_id": unit1}, 404, "unit_not_found"),
            c("unknown unit", "POST", "/v1/doors", {"site_id": site, "code": "d9", "name": "X", "kind": "unit_door", "unit_id": 999999}, 404, "unit_not_found"),
            c("unit in another building", "POST", "/v1/doors", {"site_id": site, "code": "d9", "name": "X", "kind": "unit_door", "unit_id": unit1, "building_id": 999999}, 422, "building_mismatch"),
            c("building of another site", "POST", "/v1/doors", {"site_id": site, "code": "d9", "name": "X", "kind": "entrance", "building_id": i["building_b"]}, 404, "building_not_found"),
            c("patch: unknown status", "PATCH", f"/v1/doors/{i['door1']}", {"status": "broken"}, 422, "invalid_input", "body.status"),
            c("patch: code is not writable", "PATCH", f"/v1/doors/{i['door1']}", {"code": "x9"}, 422, "invalid_input", "body.code"),
            c("group: duplicate name", "POST", "/v1/door-groups", {"site_id": site, "name": "unit b1/101", "door_ids": []}, 409, "duplicate_name"),
            c("group: door twice", "POST", "/v1/door-groups", {"site_id": site, "name": "g", "door_ids": [i["door1"], i["door1"]]}, 422, "duplicate_door"),
            c("group: door of another site", "POST", "/v1/door-groups", {"site_id": site, "name": "g", "door_ids": [i["door_b"]]}, 404, "door_not_found"),
            c("group: door ids not numbers", "POST", "/v1/door-groups", {"site_id": site, "name": "g", "door_ids": ["front"]}, 422, "invalid_input", "body.door_ids.0"),
            c("group: too many doors", "POST", "/v1/door-groups", {"site_id": site, "name": "g", "door_ids": list(range(1, 1002))}, 422, "invalid_input", "body.door_ids"),
            c("group: set unknown door", "PUT", f"/v1/door-groups/{i['group1']}/doors", {"door_ids": [999999]}, 404, "door_not_found"),
            c("group: set without list", "PUT", f"/v1/door-groups/{i['group1']}/doors", {}, 422, "invalid_input", "body.door_ids"),
            c("device: duplicate code", "POST", "/v1/devices", {"site_id": site, "code": "lock-101", "name": "X", "kind": "lock"}, 409, "duplicate_code"),
            c("device: unknown kind", "POST", "/v1/devices", {"site_id": site, "code": "x9", "name": "X", "kind": "toaster"}, 422, "invalid_input", "body.kind"),
            c("device: door of another site", "POST", "/v1/devices", {"site_id": site, "code": "x9", "name": "X", "kind": "lock", "door_ids": [i["door_b"]]}, 404, "door_not_found"),
            c("device: patch unknown door", "PATCH", f"/v1/devices/{i['device1']}", {"door_ids": [999999]}, 404, "door_not_found"),
            c("device: patch status not writable", "PATCH", f"/v1/devices/{i['device1']}", {"status": "active"}, 422, "invalid_input", "body.status"),
        ],
        "people": [
            c("bad phone", "POST", "/v1/people", {"site_id": site, "display_name": "X", "kind": "tenant", "phone": "call me"}, 422, "invalid_input", "body.phone"),
            c("phone too long", "POST", "/v1/people", {"site_id": site, "display_name": "X", "kind": "tenant", "phone": "1" * 40}, 422, "invalid_input", "body.phone"),
            c("unknown kind", "POST", "/v1/people", {"site_id": site, "display_name": "X", "kind": "king"}, 422, "invalid_input", "body.kind"),
            c("name with NUL", "POST", "/v1/people", {"site_id": site, "display_name": "X\x00", "kind": "tenant"}, 422, "invalid_input", "body.display_name"),
            c("duplicate external ref", "POST", "/v1/people", {"site_id": site, "display_name": "X", "kind": "staff", "external_ref": "HR-1"}, 409, "duplicate_external_ref"),
            c("external ref too long", "POST", "/v1/people", {"site_id": site, "display_name": "X", "kind": "staff", "external_ref": "r" * 101}, 422, "invalid_input", "body.external_ref"),
            c("status is not writable", "POST", "/v1/people", {"site_id": site, "display_name": "X", "kind": "tenant", "status": "active"}, 422, "invalid_input", "body.status"),
            c("patch: clear the name", "PATCH", f"/v1/people/{i['tenant1']}", {"display_name": None}, 422, "invalid_input", "body.display_name"),
            c("patch: duplicate external ref", "PATCH", f"/v1/people/{i['tenant1']}", {"external_ref": "HR-1"}, 409, "duplicate_external_ref"),
            c("patch: pseudonym not writable", "PATCH", f"/v1/people/{i['tenant1']}", {"pseudonym": "x"}, 422, "invalid_input", "body.pseudonym"),
            c("vehicle: plate with symbols", "POST", "/v1/vehicles", {"site_id": site, "plate": "AB!123"}, 422, "invalid_input", "body.plate"),
            c("vehicle: plate too long", "POST", "/v1/vehicles", {"site_id": site, "plate": "A" * 13}, 422, "invalid_input", "body.plate"),
            c("vehicle: plate too short", "POST", "/v1/vehicles", {"site_id": site, "plate": "A"}, 422, "invalid_input", "body.plate"),
            c("vehicle: duplicate plate, other spelling", "POST", "/v1/vehicles", {"site_id": site, "plate": "粤b 12345"}, 409, "duplicate_plate"),
            c("vehicle: owner of another site", "POST", "/v1/vehicles", {"site_id": site, "plate": "AB123", "owner_person_id": i["person_b"]}, 422, "person_not_in_site"),
            c("vehicle: unknown owner", "POST", "/v1/vehicles", {"site_id": site, "plate": "AB123", "owner_person_id": 999999}, 404, "person_not_found"),
        ],
        "grants": [
            c("person and vehicle", "POST", "/v1/grants", {"door_group_id": i["group1"], "person_id": i["tenant1"], "vehicle_id": 1, "valid_from": later(0), "valid_until": later(1)}, 422, "invalid_input", "body"),
            c("no subject", "POST", "/v1/grants", {"door_group_id": i["group1"], "valid_from": later(0), "valid_until": later(1)}, 422, "invalid_input", "body"),
            c("unknown door group", "POST", "/v1/grants", {"door_group_id": 999999, "person_id": i["tenant1"], "valid_from": later(0), "valid_until": later(1)}, 404, "door_group_not_found"),
            c("unknown person", "POST", "/v1/grants", {"door_group_id": i["group1"], "person_id": 999999, "valid_from": later(0), "valid_until": later(1)}, 404, "person_not_found"),
            c("unknown vehicle", "POST", "/v1/grants", {"door_group_id": i["group1"], "vehicle_id": 999999, "valid_from": later(0), "valid_until": later(1)}, 404, "vehicle_not_found"),
            c("window backwards", "POST", "/v1/grants", {"door_group_id": i["group1"], "person_id": i["tenant1"], "valid_from": later(1), "valid_until": later(0)}, 422, "invalid_input", "body"),
            c("naive until", "POST", "/v1/grants", {"door_group_id": i["group1"], "person_id": i["tenant1"], "valid_from": later(0), "valid_until": naive(1)}, 422, "invalid_input", "body.valid_until"),
            c("uses not a number", "POST", "/v1/grants", {"door_group_id": i["group1"], "person_id": i["tenant1"], "valid_from": later(0), "valid_until": later(1), "max_uses": "many"}, 422, "invalid_input", "body.max_uses"),
            c("suspend without reason", "POST", f"/v1/grants/{i['grant1']}/suspend", {}, 422, "invalid_input", "body.reason"),
            c("suspend with blank reason", "POST", f"/v1/grants/{i['grant1']}/suspend", {"reason": "  "}, 422, "invalid_input", "body.reason"),
            c("reinstate an active grant", "POST", f"/v1/grants/{i['grant1']}/reinstate", {"reason": "x"}, 409, "invalid_transition"),
            c("revoke an unknown grant", "POST", "/v1/grants/999999/revoke", {"reason": "x"}, 404, "grant_not_found"),
            c("list: unknown status", "GET", "/v1/grants?status=gone", None, 422, "invalid_input", "query.status"),
        ],
        "access": [
            c("no subject", "POST", "/v1/access/check", {"door_id": i["door1"]}, 422, "invalid_input", "body"),
            c("two subjects", "POST", "/v1/access/check", {"door_id": i["door1"], "person_id": i["tenant1"], "plate": "AB123"}, 422, "invalid_input", "body"),
            c("naive time", "POST", "/v1/access/check", {"door_id": i["door1"], "person_id": i["tenant1"], "at": naive(0)}, 422, "invalid_input", "body.at"),
            c("time at the end of the calendar", "POST", "/v1/access/check", {"door_id": i["door1"], "person_id": i["tenant1"], "at": "9999-12-31T23:59:59Z"}, 422, "invalid_input", "body.at"),
            c("bad plate", "POST", "/v1/access/check", {"door_id": i["door1"], "plate": "#"}, 422, "invalid_input", "body.plate"),
            c("unknown door", "POST", "/v1/access/check", {"door_id": 999999, "person_id": i["tenant1"]}, 404, "door_not_found"),
        ],
        "api-keys": [
            c("unknown role", "POST", "/v1/api-keys", {"role": "god"}, 422, "invalid_input", "body.role"),
            c("site admin without site", "POST", "/v1/api-keys", {"role": "site_admin"}, 422, "site_required"),
            c("site admin of unknown site", "POST", "/v1/api-keys", {"role": "site_admin", "site_id": 999999}, 422, "site_required"),
            c("site admin person of another site", "POST", "/v1/api-keys", {"role": "site_admin", "site_id": site, "person_id": i["person_b"]}, 422, "person_not_in_site"),
            c("owner without person", "POST", "/v1/api-keys", {"role": "owner"}, 422, "person_required"),
            c("device without device", "POST", "/v1/api-keys", {"role": "device", "device_id": 999999}, 422, "device_required"),
            c("expiry in the past", "POST", "/v1/api-keys", {"role": "tenant", "person_id": i["tenant1"], "expires_at": later(-1)}, 422, "expiry_in_past"),
            c("naive expiry", "POST", "/v1/api-keys", {"role": "tenant", "person_id": i["tenant1"], "expires_at": naive(1)}, 422, "invalid_input", "body.expires_at"),
            c("expiry beyond the calendar", "POST", "/v1/api-keys", {"role": "tenant", "person_id": i["tenant1"], "expires_at": "9999-12-31T23:00:00-05:00"}, 422, "invalid_input", "body.expires_at"),
            c("label with NUL", "POST", "/v1/api-keys", {"role": "tenant", "person_id": i["tenant1"], "label": "a\x00"}, 422, "invalid_input", "body.label"),
            c("label too long", "POST", "/v1/api-keys", {"role": "tenant", "person_id": i["tenant1"], "label": "l" * 201}, 422, "invalid_input", "body.label"),
            c("revoke unknown key", "DELETE", "/v1/api-keys/999999", None, 404, "api_key_not_found"),
        ],
        "audit": [
            c("naive since", "GET", "/v1/audit/events?since=2026-01-01T00:00:00", None, 422, "invalid_input", "query.since"),
            c("since year 1 (+05:00)", "GET", "/v1/audit/events?since=0001-01-01T00:00:00%2B05:00", None, 422, "invalid_input", "query.since"),
            c("until before since", "GET", "/v1/audit/events?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", None, 422, "invalid_time_range"),
            c("limit zero", "GET", "/v1/audit/events?limit=0", None, 422, "invalid_input", "query.limit"),
            c("limit too big", "GET", "/v1/audit/events?limit=1001", None, 422, "invalid_input", "query.limit"),
            c("negative cursor", "GET", "/v1/audit/events?after_seq=-1", None, 422, "invalid_input", "query.after_seq"),
            c("huge cursor", "GET", f"/v1/audit/events?after_seq={10**30}", None, 422, "invalid_input", "query.after_seq"),
            c("actor too long", "GET", f"/v1/audit/events?actor={'a' * 81}", None, 422, "invalid_input", "query.actor"),
            c("actor with NUL", "GET", "/v1/audit/events?actor=a%00", None, 422, "invalid_input", "query.actor"),
            c("csv: naive until", "GET", "/v1/audit/events.csv?until=2026-01-01T00:00:00", None, 422, "invalid_input", "query.until"),
        ],
        "routing": [
            c("unknown path", "GET", "/v1/nothing-here", None, 404, "not_found"),
            c("wrong method", "DELETE", "/v1/sites", None, 405, "method_not_allowed"),
            c("id path not a number", "GET", "/v1/units/abc", None, 422, "invalid_input", "path.unit_id"),
            c("id path negative", "GET", "/v1/units/-1", None, 422, "invalid_input", "path.unit_id"),
            c("id path beyond any row", "GET", f"/v1/people/{10**25}", None, 422, "invalid_input", "path.person_id"),
            c("query id beyond any row", "GET", f"/v1/grants?person_id={BIG}", None, 422, "invalid_input", "query.person_id"),
        ],
    }


def check_error_shape(body: Any) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"} and isinstance(error["details"], dict), error
    assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str) and error["message"]


def run(client: TestClient, headers: dict[str, str], case: Case) -> str | None:
    """None when the case behaves, else what went wrong."""
    if isinstance(case.body, Raw):
        response = client.request(case.method, case.url, headers={**headers, "Content-Type": case.body.content_type}, content=case.body.content)
    else:
        response = client.request(case.method, case.url, headers=headers, json=case.body)
    try:
        check_error_shape(response.json())
    except Exception:  # noqa: BLE001 - any shape problem is a failed case
        return f"{response.status_code}, not the error shape: {response.text[:200]}"
    error = response.json()["error"]
    if (response.status_code, error["code"]) != (case.status, case.code):
        return f"{response.status_code} {error['code']}: {error['message'][:150]}"
    if case.field is not None:
        fields = [d["field"] for d in error["details"].get("fields", [])]
        if not any(f == case.field or f.startswith(case.field + ".") for f in fields):
            return f"details point at {fields}, not {case.field}"
    return None


def test_bad_input_gets_a_specific_4xx(ctx: AppContext, raw: TestClient, world: World, ids: dict[str, Any]) -> None:
    # As the district admin: every refusal here is about the input, never about the caller's role.
    headers = world.auth("district")
    with ctx.db.session() as s:
        before = chain_head(s)
    problems = {
        f"{section}: {case.name}": problem
        for section, section_cases in cases(ids).items()
        for case in section_cases
        if (problem := run(raw, headers, case)) is not None
    }
    assert problems == {}
    with ctx.db.session() as s:
        assert chain_head(s) == before, "refused input must change nothing"


# --- body size ---------------------------------------------------------------------------------------------
@pytest.fixture
def small(ctx: AppContext) -> Iterator[TestClient]:
    """The app with a 2 KiB body cap, so the test need not send megabytes."""
    settings = ctx.settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(dataclasses.replace(ctx, settings=settings)), raise_server_exceptions=False) as client:
        yield client


def test_oversized_body_is_413_whether_declared_or_streamed(small: TestClient, world: World) -> None:
    h = {**world.auth("district"), "Content-Type": "application/json"}
    big = b'{"code": "big", "name": "' + b"x" * 4000 + b'"}'
    declared = small.post("/v1/sites", headers=h, content=big)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap must hold while reading
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    streamed = small.post("/v1/sites", headers=h, content=chunks())
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "payload_too_large"
    lying = small.post("/v1/sites", headers={**h, "Content-Length": "not-a-number"}, content=b"{}")
    assert lying.status_code == 413
    # Just under the cap is fine.
    fine = small.post("/v1/sites", headers=h, json={"code": "small", "name": "x" * 100})
    assert fine.status_code == 201


# --- no 500 for any garbage on any write endpoint --------------------------------------------------------------
GARBAGE: list[Any] = [None, [], "text", 0, {"unknown": 1}, {"site_id": "x", "door_ids": "x", "valid_from": 5}, Raw(b"{"), Raw(b"\x00\x01"), Raw(b"[" * 5000 + b"]" * 5000)]


def test_garbage_on_every_write_endpoint_is_a_4xx(raw: TestClient, world: World, ids: dict[str, Any]) -> None:
    paths = raw.app.openapi()["paths"]
    fill = {"site_id": ids["site_a"], "unit_id": ids["unit1"], "person_id": ids["tenant1"], "door_id": ids["door1"], "group_id": ids["group1"],
            "device_id": ids["device1"], "grant_id": ids["grant1"], "key_id": 1, "building_id": ids["building_a"], "vehicle_id": 1}
    seen, bad = 0, {}
    for path, operations in paths.items():
        if not path.startswith(OURS) or not_ours(path):
            continue  # other issues' endpoints have their own bad-input tests
        for method in operations:
            if method not in {"post", "put", "patch"}:
                continue
            try:
                url = path.format(**fill)
            except KeyError:
                continue  # a path parameter of another domain; its own tests cover it
            for body in GARBAGE:
                case = Case("garbage", method.upper(), url, body, 0, "")
                if isinstance(body, Raw):
                    response = raw.request(case.method, url, headers={**world.auth("district"), "Content-Type": "application/json"}, content=body.content)
                else:
                    response = raw.request(case.method, url, headers=world.auth("district"), json=body)
                seen += 1
                if not 400 <= response.status_code < 500:
                    bad[f"{case.method} {url} {body!r:.40}"] = response.status_code
                else:
                    check_error_shape(response.json())
    assert seen > 100
    assert bad == {}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"faces": {"threshold": 3}}, "threshold"),
        ({"faces": {"liveness_mode": "sometimes"}}, "liveness_mode"),
        ({"face": {"threshold": 0.5}}, "face"),  # a typo of a section is refused, not ignored
        ({"sync": {"faces": "yes please"}}, "faces"),
    ],
)
def test_site_settings_are_checked_when_changed(client: TestClient, world: World, settings: dict, field: str) -> None:  # type: ignore[type-arg]
    answer = client.patch(f"/v1/sites/{world.ids['site_a']}", headers=world.auth("admin_a"), json={"settings": settings})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_input"
    assert field in str(answer.json()["error"]["details"])


def test_valid_site_settings_are_stored(client: TestClient, world: World) -> None:
    settings = {"faces": {"threshold": 0.45, "liveness_mode": "enforce"}, "sync": {"faces": True}}
    answer = client.patch(f"/v1/sites/{world.ids['site_a']}", headers=world.auth("admin_a"), json={"settings": settings})
    assert answer.status_code == 200 and answer.json()["settings"] == settings
