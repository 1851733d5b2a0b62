"""Every time in every answer is RFC 3339 UTC with `Z`: checked on the OpenAPI (each date-time field
of an answer's schema uses the one type) and on real answers of every JSON GET and the calls that
take times (sent with +08:00, as terminals in China send them)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.core.times import RFC3339_UTC_PATTERN
from idsvc.passes import issuing
from idsvc.registry import doors, people, schemas
from tests.world import World

LOOKS_LIKE_A_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
CHINA = "+08:00"


def _schemas_of_answers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for item in spec["paths"].values():
        for op in item.values():
            for answer in op.get("responses", {}).values():
                for content in answer.get("content", {}).values():
                    if "schema" in content:
                        found.append(content["schema"])
    return found


def _date_time_fields(schema: Any, spec: dict[str, Any], path: str, seen: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """(where, schema) of every string with format date-time reachable from an answer's schema."""
    if isinstance(schema, list):
        return [f for i, s in enumerate(schema) for f in _date_time_fields(s, spec, f"{path}[{i}]", seen)]
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        return _date_time_fields(spec["components"]["schemas"][name], spec, name, seen | {name})
    found = [(path, schema)] if schema.get("format") == "date-time" else []
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            found += [f for name, sub in value.items() for f in _date_time_fields(sub, spec, f"{path}.{name}", seen)]
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
            found += _date_time_fields(value, spec, path, seen)
    return found


def test_every_date_time_an_answer_declares_is_utc_with_z(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    fields = [f for answer in _schemas_of_answers(spec) for f in _date_time_fields(answer, spec, "answer", set())]
    assert len(fields) >= 8  # ApiKeyOut, SiteOut, GrantOut, AccessCheckOut, ConsentOut, ...
    other = sorted({where for where, schema in fields if schema.get("pattern") != RFC3339_UTC_PATTERN})
    assert other == [], "these answer fields do not use core.times.UtcDateTime"


def _times(value: Any, where: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _times(v, f"{where}[{i}]")]
    return [(where, value)] if isinstance(value, str) and LOOKS_LIKE_A_TIME.match(value) else []


def _fill(path: str, ids: dict[str, Any]) -> str | None:
    def one(match: re.Match[str]) -> str:
        return str(ids[match.group(1)])

    try:
        return re.sub(r"\{(\w+)\}", one, path)
    except KeyError:
        return None


def test_real_answers_carry_times_only_as_utc_with_z(ctx: AppContext, client: TestClient, world: World) -> None:
    district, device = world.auth("district"), world.auth("device1")
    tenant, door, site = world.ids["tenant1"], world.ids["door1"], world.ids["site_a"]
    later = (utcnow() + timedelta(days=3)).astimezone().strftime("%Y-%m-%dT%H:%M:%S") + CHINA
    with ctx.db.session() as s:
        issued = issuing.issue(s, ctx.sealer, OPERATOR, tenant)
        vehicle = people.create_vehicle(s, OPERATOR, schemas.VehicleIn(site_id=site, plate="粤B12345", owner_person_id=tenant))
        group = doors.list_door_groups(s, OPERATOR, site)[0]
    answers: list[tuple[str, Any]] = []

    def keep(label: str, response: Any) -> None:
        assert response.status_code < 400, (label, response.status_code, response.text)
        answers.append((label, response.json()))

    # Calls that take times, given with an offset: what comes back is UTC.
    keep("access check", client.post("/v1/access/check", headers=district, json={"door_id": door, "person_id": tenant, "at": later}))
    keep("api key", client.post("/v1/api-keys", headers=district, json={"role": "tenant", "person_id": tenant, "expires_at": later}))
    keep("tenancy", client.post(f"/v1/units/{world.ids['unit1']}/tenants", headers=district,
                                json={"person_id": world.ids["tenant2"], "valid_from": later, "valid_until": later.replace(later[:4], str(int(later[:4]) + 1), 1)}))
    keep("consent", client.post(f"/v1/people/{tenant}/face/consent", headers=district, json={"method": "signed form", "text_version": "v1", "language": "zh-CN", "given_at": "2026-01-02T08:00:00" + CHINA}))
    keep("events", client.post("/v1/device/events", headers=device, json={"events": [{"event_id": "ev-00000001", "kind": "door_forced", "at": "2026-11-29T04:40:12" + CHINA, "door_id": door}]}))
    keep("verify", client.post("/v1/device/verify", headers=device, json={"door_id": door, "qr_text": issued.text}))
    keep("issue", client.post(f"/v1/people/{tenant}/passes", headers=district, json={}))
    keep("sensor", client.post("/v1/sensors", headers=district, json={"site_id": site, "building_id": world.ids["building_a"], "code": "smoke-1",
                                                                       "name": "Smoke 1", "family": "zigbee2mqtt", "kind": "smoke", "device_id": world.ids["device1"]}))
    sensor_id = answers[-1][1]["id"]
    from idsvc.alarms import service as alarms

    with ctx.db.session() as s:
        alarm, _ = alarms.raise_alarm(s, ctx.bus, alarms.Signal(source=f"door:{door}", type="door_forced", site_id=site, door_id=door, at=utcnow()), "test")
    # Every JSON GET of the API, with ids of this world.
    ids: dict[str, Any] = {"site_id": site, "building_id": world.ids["building_a"], "unit_id": world.ids["unit1"], "door_id": door, "person_id": tenant,
           "device_id": world.ids["device1"], "grant_id": world.ids["grant1"], "pass_id": issued.row.id, "vehicle_id": vehicle.id, "group_id": group.id,
           "sensor_id": sensor_id, "alarm_id": alarm.id,
           "from": utcnow().date().isoformat(), "to": (utcnow() + timedelta(days=7)).date().isoformat()}  # query parameters that are days
    spec = client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        op = item.get("get")
        if op is None or "text/event-stream" in op["responses"].get("200", {}).get("content", {}) or "{kind}" in path or "{kid}" in path:
            continue  # event streams never end; pictures and signed CBOR lists are not JSON
        url = _fill(path, ids)
        assert url is not None, f"no id for {path}: add it above"
        required = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query" and p.get("required")}
        caller = device if path.startswith("/v1/device/") else district  # the device API answers devices only
        response = client.get(url, headers=caller, params={name: ids[name] for name in required})
        if response.headers.get("content-type", "").startswith("application/json"):
            keep(f"GET {path}", response)
    assert len(answers) > 30
    wrong = [(label, where, value) for label, answer in answers for where, value in _times(answer) if not re.match(RFC3339_UTC_PATTERN, value)]
    assert wrong == []
    assert any(where for label, answer in answers for where, value in _times(answer) if label == "GET /v1/audit/events"), "the walk saw no audit event times"


def test_answers_and_the_audit_chain_write_an_instant_the_same_way() -> None:
    from datetime import UTC, datetime, timezone

    from idsvc.audit.chain import canonical_time
    from idsvc.core.times import rfc3339

    for moment in (datetime(2026, 12, 1, 18, 0, tzinfo=timezone(timedelta(hours=8))), datetime(1970, 1, 1, tzinfo=UTC),
                   datetime(2026, 12, 1, 10, 0, 0, 5, tzinfo=UTC), datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)):
        assert rfc3339(moment) == canonical_time(moment)
        assert re.fullmatch(RFC3339_UTC_PATTERN, rfc3339(moment))
