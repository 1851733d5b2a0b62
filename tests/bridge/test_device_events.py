"""The service side of the journal upload: each event is stored once and lands in the audit trail."""

from __future__ import annotations

from fastapi.testclient import TestClient

from idsvc.audit.service import AuditFilter, query
from idsvc.context import AppContext
from tests.world import World


def _event(event_id: str, door_id: int, kind: str = "access_granted") -> dict:
    return {"event_id": event_id, "kind": kind, "at": "2026-11-29T04:00:00+00:00", "door_id": door_id, "data": {"source": "offline", "reasons": []}}


def test_upload_stores_each_event_once_and_audits_it(ctx: AppContext, client: TestClient, world: World) -> None:
    door = world.ids["door1"]
    batch = {"events": [_event("ev-0000001", door), _event("ev-0000002", door, "door_forced")]}
    first = client.post("/v1/device/events", json=batch, headers=world.auth("device1"))
    assert first.status_code == 200, first.text
    assert first.json() == {"stored": ["ev-0000001", "ev-0000002"], "duplicates": [], "rejected": {}}
    # At-least-once upload: the same batch again (the answer was lost) changes nothing.
    again = client.post("/v1/device/events", json=batch, headers=world.auth("device1"))
    assert again.json() == {"stored": [], "duplicates": ["ev-0000001", "ev-0000002"], "rejected": {}}
    with ctx.db.session() as s:
        trail = [e for e in query(s, AuditFilter(kind="device."), 50) if e.entity_type == "device_event"]
    assert [(e.kind, e.data["event_id"], e.door_id, e.site_id) for e in trail] == [
        ("device.access_granted", "ev-0000001", door, world.ids["site_a"]),
        ("device.door_forced", "ev-0000002", door, world.ids["site_a"]),
    ]
    assert trail[0].actor == f"device:{world.ids['device1']}"


def test_upload_is_device_only_and_door_scoped(client: TestClient, world: World) -> None:
    other_door = world.ids["door2"]  # belongs to lock-102, not to device1
    answer = client.post("/v1/device/events", json={"events": [_event("ev-0000003", other_door)]}, headers=world.auth("device1"))
    assert answer.json()["rejected"] == {"ev-0000003": "door_not_of_device"}
    refused = client.post("/v1/device/events", json={"events": [_event("ev-0000004", other_door)]}, headers=world.auth("admin_a"))
    assert refused.status_code == 403
    naive = _event("ev-0000005", world.ids["door1"]) | {"at": "2026-11-29T04:00:00"}
    assert client.post("/v1/device/events", json={"events": [naive]}, headers=world.auth("device1")).status_code == 422


def test_reused_event_id_with_other_content_is_refused_not_a_duplicate(ctx: AppContext, client: TestClient, world: World) -> None:
    """At-least-once upload re-sends an event unchanged; the same id with different content is a device fault."""
    door = world.ids["door1"]
    assert client.post("/v1/device/events", json={"events": [_event("ev-0000010", door)]}, headers=world.auth("device1")).json()["stored"] == ["ev-0000010"]
    changed = _event("ev-0000010", door, "door_forced")
    later = _event("ev-0000010", door) | {"at": "2026-11-29T05:00:00+00:00"}
    same_instant = _event("ev-0000010", door) | {"at": "2026-11-29T12:00:00+08:00"}  # the same moment, another offset
    answer = client.post("/v1/device/events", json={"events": [changed, later, same_instant]}, headers=world.auth("device1")).json()
    # One id per batch answer: the first occurrence decides; the conflicting ones are rejected.
    assert answer["rejected"] == {"ev-0000010": "event_id_reused"}
    again = client.post("/v1/device/events", json={"events": [same_instant]}, headers=world.auth("device1")).json()
    assert again == {"stored": [], "duplicates": ["ev-0000010"], "rejected": {}}
    with ctx.db.session() as s:
        trail = [e for e in query(s, AuditFilter(kind="device."), 50) if e.entity_type == "device_event"]
    assert [e.kind for e in trail] == ["device.access_granted"]


def test_events_without_a_door_belong_to_the_device_site(ctx: AppContext, client: TestClient, world: World) -> None:
    """bridge_started, feed_refused, cache_stale: a site admin must see them, not only a district admin."""
    started = {"event_id": "ev-0000020", "kind": "bridge_started", "at": "2026-11-29T04:00:00+00:00", "door_id": None, "data": {}}
    assert client.post("/v1/device/events", json={"events": [started]}, headers=world.auth("device1")).json()["stored"] == ["ev-0000020"]
    with ctx.db.session() as s:
        trail = [e for e in query(s, AuditFilter(kind="device.bridge_started"), 5)]
    assert [(e.site_id, e.door_id) for e in trail] == [(world.ids["site_a"], None)]
    seen_by_site_admin = client.get("/v1/audit/events", params={"kind": "device.bridge_started"}, headers=world.auth("admin_a"))
    assert seen_by_site_admin.status_code == 200, seen_by_site_admin.text
    assert [e["data"]["event_id"] for e in seen_by_site_admin.json()["events"]] == ["ev-0000020"]


def test_device_learns_its_own_doors(client: TestClient, world: World) -> None:
    """What `door-bridge check-config` asks: is the key good, and which doors is this device bound to."""
    answer = client.get("/v1/device/self", headers=world.auth("device1"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"device_id": world.ids["device1"], "site_id": world.ids["site_a"], "door_ids": [world.ids["door1"]]}
    assert client.get("/v1/device/self", headers={"Authorization": "Bearer idsvc_wrong"}).status_code == 401
    assert client.get("/v1/device/self", headers=world.auth("admin_a")).json()["error"]["code"] == "forbidden_role"
