"""Alarms over HTTP: who sees, acknowledges and clears what; door alarms from uploaded device events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from idsvc.alarms import service
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from tests.alarms.conftest import SensorWorld
from tests.world import World


def _raise(ctx: AppContext, w: World, source: str, type_: str, unit: str | None, site: str = "site_a") -> int:
    with ctx.db.session() as s:
        alarm, _ = service.raise_alarm(s, ctx.bus, service.Signal(source=source, type=type_, site_id=w.ids[site], unit_id=w.ids[unit] if unit else None, at=utcnow()), "test")
        return alarm.id


def _ids(body: dict[str, Any]) -> list[int]:
    return [a["id"] for a in body["alarms"]]


def test_each_role_sees_its_own_alarms_only(client: TestClient, ctx: AppContext, world: World) -> None:
    a1 = _raise(ctx, world, "sensor:1", "smoke", "unit1")
    a2 = _raise(ctx, world, "sensor:2", "smoke", "unit2")
    building = _raise(ctx, world, "sensor:3", "residual_current_high", None)
    other_site = _raise(ctx, world, "sensor:4", "smoke", None, site="site_b")
    seen = {who: _ids(client.get("/v1/alarms", headers=world.auth(who)).json()) for who in ("district", "admin_a", "admin_b", "owner1", "owner2")}
    assert seen == {
        "district": [other_site, building, a2, a1],
        "admin_a": [building, a2, a1],
        "admin_b": [other_site],
        "owner1": [a1],
        "owner2": [a2],
    }
    for who in ("tenant1", "device1"):
        answer = client.get("/v1/alarms", headers=world.auth(who))
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden_role"
    assert client.get(f"/v1/alarms/{a2}", headers=world.auth("owner1")).status_code == 404  # invisible, not forbidden
    assert client.get(f"/v1/alarms/{a1}", headers=world.auth("admin_b")).json()["error"]["code"] == "alarm_not_found"


def test_owners_acknowledge_site_staff_clear(client: TestClient, ctx: AppContext, world: World) -> None:
    alarm = _raise(ctx, world, "sensor:1", "smoke", "unit1")
    assert client.post(f"/v1/alarms/{alarm}/acknowledge", headers=world.auth("owner2"), json={}).status_code == 404
    acked = client.post(f"/v1/alarms/{alarm}/acknowledge", headers=world.auth("owner1"), json={"note": "on my way"}).json()
    assert (acked["acknowledged"], acked["acknowledged_by"], acked["state"]) == (True, f"person:{world.ids['owner1']}", "active")
    again = client.post(f"/v1/alarms/{alarm}/acknowledge", headers=world.auth("admin_a")).json()
    assert again["acknowledged_by"] == f"person:{world.ids['owner1']}"  # the first acknowledgement stands
    refused = client.post(f"/v1/alarms/{alarm}/clear", headers=world.auth("owner1"), json={"reason": "fine"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role"
    assert client.post(f"/v1/alarms/{alarm}/clear", headers=world.auth("admin_a"), json={}).status_code == 422
    cleared = client.post(f"/v1/alarms/{alarm}/clear", headers=world.auth("admin_a"), json={"reason": "burnt toast, checked on site"}).json()
    assert (cleared["state"], cleared["clear_reason"]) == ("cleared", "burnt toast, checked on site") and cleared["cleared_by"].startswith("key:")
    assert _ids(client.get("/v1/alarms", headers=world.auth("owner1")).json()) == []
    assert _ids(client.get("/v1/alarms?state=cleared", headers=world.auth("owner1")).json()) == [alarm]
    trail = client.get("/v1/audit/events?kind=alarm.", headers=world.auth("district")).json()["events"]
    assert [(e["kind"], e["entity_id"]) for e in trail] == [("alarm.raised", alarm), ("alarm.acknowledged", alarm), ("alarm.cleared", alarm)]


def test_filters_paging_and_summary(client: TestClient, ctx: AppContext, world: World) -> None:
    ids = [_raise(ctx, world, f"sensor:{n}", "smoke" if n % 2 else "sensor_battery_low", "unit1") for n in range(1, 6)]
    page = client.get("/v1/alarms?limit=2", headers=world.auth("admin_a")).json()
    assert _ids(page) == ids[:2:-1][:2] and page["next_before_id"] == ids[3]
    rest = client.get(f"/v1/alarms?limit=2&before_id={page['next_before_id']}", headers=world.auth("admin_a")).json()
    assert _ids(rest) == [ids[2], ids[1]]
    assert _ids(client.get("/v1/alarms?severity=warning", headers=world.auth("admin_a")).json()) == [ids[3], ids[1]]
    assert _ids(client.get("/v1/alarms?type=smoke&type=nothing", headers=world.auth("admin_a")).json()) == [ids[4], ids[2], ids[0]]
    assert client.get("/v1/alarms?severity=huge", headers=world.auth("admin_a")).status_code == 422
    assert client.get("/v1/alarms/summary", headers=world.auth("owner1")).json() == {
        "active": 5, "unacknowledged": 5, "by_severity": {"critical": 3, "major": 0, "minor": 0, "warning": 2}}


def _upload(client: TestClient, world: World, *events: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/device/events", headers=world.auth("device1"), json={"events": list(events)})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_door_alarms_come_from_uploaded_bridge_events(client: TestClient, world: World) -> None:
    door, t0 = world.ids["door1"], utcnow() - timedelta(minutes=5)
    event = lambda n, kind, alarm, m: {"event_id": f"evt-{n:05d}", "kind": kind, "at": (t0 + timedelta(seconds=m)).isoformat(), "door_id": door, "data": {"alarm": alarm} if alarm else {}}  # noqa: E731
    _upload(client, world, event(1, "door_forced", True, 0), event(2, "door_opened", False, 1), event(3, "device_offline", True, 2))
    # The bridge re-sends the batch (lost answer) and reports the forced door again.
    again = _upload(client, world, event(1, "door_forced", True, 0), event(4, "door_forced", True, 30))
    assert again["duplicates"] == ["evt-00001"]
    alarms = {a["type"]: a for a in client.get("/v1/alarms", headers=world.auth("owner1")).json()["alarms"]}
    assert set(alarms) == {"door_forced", "device_offline"}
    forced = alarms["door_forced"]
    assert (forced["source"], forced["severity"], forced["count"], forced["door_id"], forced["unit_id"]) == (f"door:{door}", "critical", 2, door, world.ids["unit1"])
    assert forced["data"]["event_id"] == "evt-00004"
    _upload(client, world, event(5, "device_online", False, 40))
    active = {a["type"] for a in client.get("/v1/alarms", headers=world.auth("owner1")).json()["alarms"]}
    assert active == {"door_forced"}  # the lock is back; the forced door waits for a person
    cleared = client.get("/v1/alarms?state=cleared", headers=world.auth("owner1")).json()["alarms"]
    assert [(a["type"], a["cleared_by"], a["clear_reason"]) for a in cleared] == [("device_offline", "system", "device_online")]


def test_sensors_are_registered_by_site_admins_in_a_building(client: TestClient, sensor_world: SensorWorld) -> None:
    w = sensor_world.world
    body = {"site_id": w.ids["site_a"], "building_id": w.ids["building_a"], "unit_id": w.ids["unit1"], "device_id": sensor_world.ids["ingest"],
            "code": "co-101", "name": "CO 101", "family": "zigbee2mqtt", "kind": "carbon_monoxide"}
    assert client.post("/v1/sensors", headers=w.auth("owner1"), json=body).json()["error"]["code"] == "forbidden_scope"
    made = client.post("/v1/sensors", headers=w.auth("admin_a"), json=body)
    assert made.status_code == 201 and made.json()["silence_s"] == 7200
    assert client.post("/v1/sensors", headers=w.auth("admin_a"), json=body).json()["error"]["code"] == "sensor_code_taken"
    wrong_unit = client.post("/v1/sensors", headers=w.auth("admin_a"), json=body | {"code": "x-1", "building_id": w.ids["building_b"]})
    assert wrong_unit.json()["error"]["code"] == "building_not_in_site"
    station = body | {"code": "010000A8900016F000169DC0", "family": "hj212", "kind": "emission_station", "unit_id": None, "device_id": None}
    assert client.post("/v1/sensors", headers=w.auth("admin_a"), json=station).json()["error"]["code"] == "password_required"
    assert client.post("/v1/sensors", headers=w.auth("admin_a"), json=station | {"password": "123456", "settings": {"crc": "lax"}}).json()["error"]["code"] == "invalid_settings"
    made_station = client.post("/v1/sensors", headers=w.auth("admin_a"), json=station | {"password": "123456"}).json()
    assert "password" not in made_station and made_station["device_id"] is None
    assert [s["code"] for s in client.get("/v1/sensors", headers=w.auth("owner1")).json()] == ["smoke-101", "co-101"]


def test_site_alarm_settings_are_checked(client: TestClient, world: World) -> None:
    site = world.ids["site_a"]
    ok = client.patch(f"/v1/sites/{site}", headers=world.auth("admin_a"), json={"settings": {"alarms": {"gas_value": {"limit": 20, "hold_s": 60}, "emission_limits": {"a21026": {"hour": 0.35}}}}})
    assert ok.status_code == 200, ok.text
    bad = client.patch(f"/v1/sites/{site}", headers=world.auth("admin_a"), json={"settings": {"alarms": {"gas_value": {"limit": -1}}}})
    assert bad.status_code == 422
    typo = client.patch(f"/v1/sites/{site}", headers=world.auth("admin_a"), json={"settings": {"alarms": {"gas": {"limit": 5}}}})
    assert typo.status_code == 422
