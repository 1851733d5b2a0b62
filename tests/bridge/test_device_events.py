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
