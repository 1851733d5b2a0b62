"""Retention per site, through the jobs API: contact data goes after the tenancy, door history is
pseudonymised after the site's period, templates go after theirs, erasures are finished for late
arrivals; a dry run lists what would go and changes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from idsvc.audit import service as audit
from idsvc.audit.models import AuditEvent
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.faces import gallery
from idsvc.faces import service as faces
from idsvc.faces.models import FaceTemplate
from idsvc.registry.models import Grant, Person
from tests.world import World


def _settings(client: TestClient, world: World, site: str, **sections: Any) -> None:
    current = client.get(f"/v1/sites/{world.ids[site]}", headers=world.auth("district")).json()["settings"]
    response = client.patch(f"/v1/sites/{world.ids[site]}", headers=world.auth("district"), json={"settings": {**current, **sections}})
    assert response.status_code == 200, response.text


def _run(client: TestClient, world: World, job: str, dry_run: bool = False) -> dict[str, Any]:
    response = client.post(f"/v1/jobs/{job}/run", params={"dry_run": str(dry_run).lower()}, headers=world.auth("district"))
    assert response.status_code == 200 and response.json()["ok"], response.text
    return response.json()["result"]  # type: ignore[no-any-return]


def _end_tenancy(ctx: AppContext, client: TestClient, world: World, person: str, days_ago: int) -> None:
    """End the person's tenancy through the API, then move its end into the past."""
    grant = client.get("/v1/grants", params={"person_id": world.ids[person]}, headers=world.auth("admin_a")).json()[0]
    assert client.post(f"/v1/grants/{grant['id']}/revoke", headers=world.auth("admin_a"), json={"reason": "lease ended"}).status_code == 200
    with ctx.db.session() as s:
        s.execute(update(Grant).where(Grant.id == grant["id"]).values(ended_at=utcnow() - timedelta(days=days_ago), valid_from=utcnow() - timedelta(days=days_ago + 300)))


def test_contact_data_goes_after_the_tenancy_ends(ctx: AppContext, client: TestClient, world: World) -> None:
    _settings(client, world, "site_a", registration={"fields": ["occupation", "workplace"]}, retention={"contact_days": 10})
    admin = world.auth("admin_a")
    for person, phone in (("tenant1", "+86 138 0000 0001"), ("tenant2", "+86 138 0000 0002"), ("owner1", "+86 138 0000 0003")):
        patch = {"phone": phone} | ({} if person == "owner1" else {"occupation": "cook", "workplace": "Canteen"})
        assert client.patch(f"/v1/people/{world.ids[person]}", headers=admin, json=patch).status_code == 200
    _end_tenancy(ctx, client, world, "tenant1", days_ago=11)  # past the site's 10 days
    _end_tenancy(ctx, client, world, "tenant2", days_ago=5)  # not yet

    dry = _run(client, world, "retention", dry_run=True)
    assert dry["contact_deleted"] == 1 and dry["sites"][0]["contact_deleted"] == [world.ids["tenant1"]]
    assert client.get(f"/v1/people/{world.ids['tenant1']}", headers=admin).json()["phone"] == "+86 138 0000 0001"  # nothing changed

    assert _run(client, world, "retention")["contact_deleted"] == 1
    gone = client.get(f"/v1/people/{world.ids['tenant1']}", headers=admin).json()
    assert (gone["display_name"], gone["phone"], gone["occupation"], gone["workplace"]) == ("Tenant 1", None, None, None)
    kept = client.get(f"/v1/people/{world.ids['tenant2']}", headers=admin).json()
    assert (kept["phone"], kept["occupation"]) == ("+86 138 0000 0002", "cook")
    assert client.get(f"/v1/people/{world.ids['owner1']}", headers=admin).json()["phone"] == "+86 138 0000 0003"  # no tenancy, not touched
    events = client.get("/v1/audit/events", params={"kind": "person.contact_deleted"}, headers=world.auth("district")).json()["events"]
    assert [(e["person_id"], e["actor"], e["data"]["fields"]) for e in events] == [(world.ids["tenant1"], "system:retention", ["phone", "occupation", "workplace"])]
    assert _run(client, world, "retention")["contact_deleted"] == 0  # once


def _decision(at_days_ago: int, world: World, person: str, site: str = "site_a", door: str = "door1") -> audit.NewEvent:
    return audit.NewEvent(
        kind="decision", actor=f"device:{world.ids['device1']}", at=utcnow() - timedelta(days=at_days_ago), site_id=world.ids[site],
        door_id=world.ids.get(door), person_id=world.ids[person], data={"decision_id": uuid.uuid4().hex, "method": "qr", "allow": True, "reasons": []},
    )


def test_door_history_is_pseudonymised_after_the_sites_period(ctx: AppContext, client: TestClient, world: World) -> None:
    _settings(client, world, "site_a", retention={"decision_days": 30})
    with ctx.db.session() as s:
        audit.append(s, _decision(40, world, "tenant1"), _decision(31, world, "tenant1"), _decision(10, world, "tenant1"))
        audit.append(s, audit.NewEvent(kind="decision", actor="device:9", at=utcnow() - timedelta(days=40), site_id=world.ids["site_b"], person_id=world.ids["tenant2"], data={"allow": False}))
    old_upload = {"event_id": f"old-{uuid.uuid4().hex}", "kind": "access_granted", "at": (utcnow() - timedelta(days=45)).isoformat(), "door_id": world.ids["door1"],
                  "person_id": world.ids["tenant1"], "data": {"temperature": 36.5}}
    assert client.post("/v1/device/events", headers=world.auth("device1"), json={"events": [old_upload]}).status_code == 200

    assert _run(client, world, "retention", dry_run=True)["decisions_pseudonymised"] == 3
    result = _run(client, world, "retention")
    assert result["decisions_pseudonymised"] == 3  # two old decisions and the old device event of site A; site B keeps 180 days
    report = client.get("/v1/audit/verify", headers=world.auth("district")).json()
    assert report["ok"] is True and report["events_pseudonymised"] == 3
    with ctx.db.session() as s:
        pseudonym = s.get(Person, world.ids["tenant1"]).audit_pseudonym  # type: ignore[union-attr]
        old = s.scalars(select(AuditEvent).where(AuditEvent.subject.is_not(None))).all()
        assert {e.subject for e in old} == {pseudonym} and all(e.person_id is None and "temperature" not in e.data for e in old)
        record = s.scalars(select(AuditEvent).where(AuditEvent.kind == "audit.pseudonymised")).one()
        assert record.data["reason"] == "retention" and record.data["events_pseudonymised"] == 3
    # The tenant's own view of the trail no longer names them in old decisions; their export still has them.
    mine = client.get("/v1/audit/events", params={"kind": "decision"}, headers=world.auth("tenant1")).json()["events"]
    assert len(mine) == 1
    exported = client.post(f"/v1/people/{world.ids['tenant1']}/export", headers=world.auth("admin_a"), json={"requester": "the tenant", "purpose": "access"}).json()
    assert len([e for e in exported["audit_events"] if e["kind"] == "decision"]) == 3
    assert _run(client, world, "retention")["decisions_pseudonymised"] == 0


def test_templates_go_after_the_sites_period(ctx: AppContext, client: TestClient, world: World) -> None:
    _settings(client, world, "site_a", retention={"face_template_days": 0})
    with ctx.db.session() as s:
        for person in ("tenant1", "tenant2"):
            consent = faces.record_consent(s, OPERATOR, world.ids[person], method="signed form", text_version="2026-11", language="zh-CN")
            s.add(FaceTemplate(site_id=world.ids["site_a"], person_id=world.ids[person], consent_id=consent.id, pack="p1", dim=512,
                               sealed=gallery.seal_embedding(ctx.sealer, np.ones(512, np.float32), world.ids["site_a"], world.ids[person], "p1"), images_used=1, quality=[], created_by="t"))
    _end_tenancy(ctx, client, world, "tenant1", days_ago=1)
    assert _run(client, world, "template_purge", dry_run=True) == {"templates_deleted_for_people": [world.ids["tenant1"]]}
    assert _run(client, world, "template_purge") == {"templates_deleted_for_people": [world.ids["tenant1"]]}
    with ctx.db.session() as s:
        assert [t.person_id for t in s.scalars(select(FaceTemplate))] == [world.ids["tenant2"]]


def test_an_event_arriving_after_an_erasure_is_pseudonymised(ctx: AppContext, client: TestClient, world: World) -> None:
    tenant = world.ids["tenant2"]
    assert client.post(f"/v1/people/{tenant}/erase", headers=world.auth("admin_a"), json={"requester": "the tenant", "purpose": "moved out"}).status_code == 200
    late = {"event_id": f"late-{uuid.uuid4().hex}", "kind": "access_granted", "at": (utcnow() - timedelta(days=2)).isoformat(), "person_id": tenant, "data": {"temperature": 37.0}}
    assert client.post("/v1/device/events", headers=world.auth("device1"), json={"events": [late]}).json()["stored"] == [late["event_id"]]
    assert _run(client, world, "retention")["late_events_pseudonymised"] == 1
    with ctx.db.session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.person_id == tenant)).all() == []
    assert client.get("/v1/audit/verify", headers=world.auth("district")).json()["ok"] is True
