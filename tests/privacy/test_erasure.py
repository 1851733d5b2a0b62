"""Export and erasure of one person through the API. Done when: a person with a year of decisions is
erased, `idsvc audit verify` still passes, and no query (nor any byte of the SQLite file) finds their
name or phone."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from idsvc.audit import service as audit
from idsvc.audit.models import AuditEvent
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.faces import gallery
from idsvc.faces import service as faces
from idsvc.faces.models import FaceTemplate
from idsvc.passes.models import Pass
from idsvc.registry.models import Person, Status
from tests.privacy.conftest import Cli
from tests.privacy.evidence import found_in_sqlite_files, found_in_tables
from tests.world import World

NAME, PHONE, PLATE = "王小明", "+86 138 0013 8000", "粤A12345"
DIGITS = "13800138000"
REQUEST = {"requester": "the tenant, in person at the site office", "purpose": "moved out; asked to be forgotten (PIPL art. 47)"}
DAYS = 365


@pytest.fixture
def tenant(ctx: AppContext, client: TestClient, world: World) -> dict[str, Any]:
    """A tenant of unit 1 with a pass, a face, a car, an app key, door decisions over a year, device
    events and free text naming them, all made the way the service makes them."""
    admin = world.auth("admin_a")
    person = client.post("/v1/people", headers=admin, json={"site_id": world.ids["site_a"], "display_name": NAME, "kind": "tenant", "phone": PHONE}).json()
    pid = person["id"]
    now = utcnow()
    window = {"person_id": pid, "valid_from": (now - timedelta(days=DAYS + 1)).isoformat(), "valid_until": (now + timedelta(days=30)).isoformat()}
    tenancy = client.post(f"/v1/units/{world.ids['unit1']}/tenants", headers=admin, json=window)
    assert tenancy.status_code == 201, tenancy.text
    issued = client.post(f"/v1/people/{pid}/passes", headers=world.auth("owner1"), json={})
    assert issued.status_code == 201, issued.text
    for _ in range(3):  # real decisions through the device API
        decision = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": issued.json()["qr_text"]})
        assert decision.json()["allow"] is True
    vehicle = client.post("/v1/vehicles", headers=admin, json={"site_id": world.ids["site_a"], "plate": PLATE, "owner_person_id": pid})
    assert vehicle.status_code == 201, vehicle.text
    key = client.post("/v1/api-keys", headers=admin, json={"role": "tenant", "person_id": pid, "label": f"{NAME}'s phone app"})
    assert key.status_code == 201, key.text
    events = [
        {"event_id": f"e-{uuid.uuid4().hex}", "kind": "access_granted", "at": (now - timedelta(days=d)).isoformat(), "door_id": world.ids["door1"], "person_id": pid,
         "data": {"temperature": {"celsius": 36.6}, "source": "offline", "event": {"name": NAME, "employeeNoString": DIGITS}}}
        for d in (1, 200)
    ] + [  # a fever at the gate: the bridge flags it as an alarm, and the alarm keeps the event's data
        {"event_id": f"e-{uuid.uuid4().hex}", "kind": "fever_detected", "at": (now - timedelta(days=2)).isoformat(), "door_id": world.ids["door1"], "person_id": pid,
         "data": {"alarm": True, "temperature": {"celsius": 38.4}, "event": {"name": NAME, "employeeNoString": DIGITS}}}
    ]
    assert client.post("/v1/device/events", headers=world.auth("device1"), json={"events": events}).json()["stored"] == [e["event_id"] for e in events]
    with ctx.db.session() as s:
        consent = faces.record_consent(s, OPERATOR, pid, method="signed form", text_version="2026-11", language="zh-CN")
        s.add(FaceTemplate(site_id=world.ids["site_a"], person_id=pid, consent_id=consent.id, pack="p1", dim=512,
                           sealed=gallery.seal_embedding(ctx.sealer, np.ones(512, np.float32), world.ids["site_a"], pid, "p1"), images_used=1, quality=[], created_by="t"))
        # A year of door decisions, written as the decision log writes them (three a day).
        audit.append(s, *(
            audit.NewEvent(kind="decision", actor=f"device:{world.ids['device1']}", at=now - timedelta(days=d, hours=h), site_id=world.ids["site_a"],
                           unit_id=world.ids["unit1"], door_id=world.ids["door1"], person_id=pid,
                           data={"decision_id": uuid.uuid4().hex, "method": "qr", "allow": True, "reasons": []})
            for d in range(1, DAYS + 1) for h in (8, 13, 19)
        ))
        audit.append(s, audit.NewEvent(kind="decision", actor=f"device:{world.ids['device1']}", at=now - timedelta(days=3), site_id=world.ids["site_a"],
                                       door_id=world.ids["door1"], data={"decision_id": "plate-1", "method": "plate", "plate": PLATE, "allow": True, "reasons": []}))
    # Staff typed the name into a reason: free text is personal data too.
    grants = client.get("/v1/grants", params={"person_id": pid}, headers=admin).json()
    assert client.post(f"/v1/grants/{grants[0]['id']}/suspend", headers=admin, json={"reason": f"{NAME} late with rent, call {PHONE}"}).status_code == 200
    return {"id": pid, "pass": issued.json()["qr_text"], "key": key.json()["token"]}


def _events_about(ctx: AppContext, person_id: int) -> int:
    with ctx.db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.person_id == person_id)) or 0


def test_export_is_everything_held_and_is_audited(ctx: AppContext, client: TestClient, world: World, tenant: dict[str, Any]) -> None:
    response = client.post(f"/v1/people/{tenant['id']}/export", headers=world.auth("admin_a"), json=REQUEST)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["format"] == "idsvc.person-export/1" and doc["requested_by"] == REQUEST["requester"]
    assert (doc["person"]["display_name"], doc["person"]["phone"]) == (NAME, PHONE)
    assert len(doc["grants"]) == 1 and doc["grants"][0]["status"] == "suspended"
    assert [v["plate"] for v in doc["vehicles"]] == [PLATE]
    assert len(doc["passes"]) == 1 and len(doc["api_keys"]) == 1 and doc["api_keys"][0]["label"].startswith(NAME)
    assert [c["purpose"] for c in doc["face"]["consents"]] == ["face_access"] and len(doc["face"]["templates"]) == 1
    decisions = [e for e in doc["audit_events"] if e["kind"] == "decision"]
    assert len(decisions) == 3 * DAYS + 3
    assert len(doc["device_events"]) == 3 and doc["device_events"][0]["data"]["temperature"] == {"celsius": 36.6}
    assert doc["audit_events"] == sorted(doc["audit_events"], key=lambda e: e["seq"])
    with ctx.db.session() as s:
        exported = s.scalars(select(AuditEvent).where(AuditEvent.kind == "person.exported")).one()
    assert exported.actor.startswith("key:") and exported.data["requester"] == REQUEST["requester"] and exported.data["purpose"] == REQUEST["purpose"]


@pytest.mark.parametrize(("who", "status", "code"), [("tenant1", 404, "person_not_found"), ("owner1", 403, "forbidden_role"), ("admin_b", 404, "person_not_found"), ("device1", 404, "person_not_found")])
def test_only_the_sites_admins_export_or_erase(client: TestClient, world: World, tenant: dict[str, Any], who: str, status: int, code: str) -> None:
    for verb in ("export", "erase"):
        response = client.post(f"/v1/people/{tenant['id']}/{verb}", headers=world.auth(who), json=REQUEST)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (verb, response.text)


def test_erasure_leaves_a_verifying_chain_and_no_trace_of_the_name(ctx: AppContext, client: TestClient, world: World, tenant: dict[str, Any], cli: Cli) -> None:
    pid = tenant["id"]
    needles = (NAME, PHONE, DIGITS, PLATE)
    assert found_in_tables(ctx, *needles)  # before: the free text, the plate and the raw terminal event hold them
    before = _events_about(ctx, pid)
    assert before > 3 * DAYS
    for naming in ({**REQUEST, "requester": f"{NAME} at the office"}, {**REQUEST, "purpose": f"call back on {DIGITS}"}):
        refused = client.post(f"/v1/people/{pid}/erase", headers=world.auth("admin_a"), json=naming)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "request_names_the_person"
    erased = client.post(f"/v1/people/{pid}/erase", headers=world.auth("admin_a"), json=REQUEST)
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["passes_revoked"] == 1 and report["templates_deleted"] == 1 and report["consents_deleted"] == 1
    assert report["api_keys_deleted"] == 1 and report["vehicles_deleted"] == 1 and report["grants_deleted"] == 1
    assert report["device_events_cleared"] == 3 and report["audit_events_pseudonymised"] >= before + 1  # + the plate decision

    code, output = cli.run("audit", "verify")
    assert code == 0, output
    verified = json.loads(output)
    assert verified["ok"] is True and verified["events_pseudonymised"] == report["audit_events_pseudonymised"]

    assert found_in_tables(ctx, *needles) == []
    if ctx.db.is_sqlite:
        assert found_in_sqlite_files(ctx.db, *needles) == []
    assert _events_about(ctx, pid) == 0
    with ctx.db.session() as s:
        tombstone = s.get(Person, pid)
        assert tombstone is not None and tombstone.status is Status.revoked and tombstone.sealed is None and tombstone.audit_pseudonym is None
        subjects = set(s.scalars(select(AuditEvent.subject).where(AuditEvent.kind == "decision", AuditEvent.subject.is_not(None))))
        assert len(subjects) == 1  # one pseudonym for the year, unlinkable now
        assert s.scalar(select(Pass.holder_key).where(Pass.person_id == pid)) is None
    # Gone for every reader, and refused at every door.
    assert client.get(f"/v1/people/{pid}", headers=world.auth("admin_a")).status_code == 404
    assert client.post(f"/v1/people/{pid}/export", headers=world.auth("admin_a"), json=REQUEST).status_code == 404
    assert pid not in [p["id"] for p in client.get("/v1/people", params={"site_id": world.ids["site_a"]}, headers=world.auth("admin_a")).json()]
    for verb in ("reinstate", "suspend", "revoke"):  # the tombstone cannot be brought back
        assert client.post(f"/v1/people/{pid}/{verb}", headers=world.auth("district"), json={"reason": "r"}).status_code == 404
    assert client.post(f"/v1/people/{pid}/passes", headers=world.auth("district"), json={}).status_code == 404
    verdict = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": tenant["pass"]}).json()
    assert verdict["allow"] is False
    assert client.get("/v1/sites", headers={"Authorization": f"Bearer {tenant['key']}"}).status_code == 401
    # Everyone else is untouched.
    other = client.get(f"/v1/people/{world.ids['tenant1']}", headers=world.auth("admin_a"))
    assert other.status_code == 200 and other.json()["display_name"] == "Tenant 1"
    assert client.get("/v1/audit/events", params={"person_id": world.ids["tenant1"]}, headers=world.auth("district")).json()["events"]


def test_erasure_from_the_command_line_asks_first(ctx: AppContext, tenant: dict[str, Any], cli: Cli) -> None:
    pid = str(tenant["id"])
    code, output = cli.run("privacy", "erase", pid, "--requester", "x", "--purpose", "y", answer="n\n")
    assert code == 1 and "not erased" in output  # asked, and the operator said no
    out = cli.json("privacy", "erase", pid, "--requester", "the tenant, by letter", "--purpose", "moved out", "--yes")
    assert out["person_id"] == tenant["id"] and out["audit_events_pseudonymised"] > 3 * DAYS
    code, output = cli.run("privacy", "erase", pid, "--requester", "x", "--purpose", "y", "--yes")
    assert code == 1 and "person_not_found" in output  # once is enough
    code, output = cli.run("audit", "verify")
    assert code == 0, output


def test_export_from_the_command_line_to_a_file(tenant: dict[str, Any], cli: Cli, tmp_path) -> None:  # noqa: ANN001
    target = tmp_path / "export.json"
    out = cli.json("privacy", "export", str(tenant["id"]), "--requester", "the tenant", "--purpose", "access request", "--out", str(target))
    assert out["file"] == str(target)
    assert json.loads(target.read_text(encoding="utf-8"))["person"]["display_name"] == NAME
    code, output = cli.run("privacy", "export", str(tenant["id"]), "--requester", "t", "--purpose", "p", "--out", str(tmp_path / "missing" / "x.json"))
    assert code == 1 and "cannot write" in output and "Traceback" not in output


def test_erasing_a_landlord_keeps_their_units_and_tenants(ctx: AppContext, client: TestClient, world: World) -> None:
    """What a landlord did to others' records stays, without their name: events they acted in name a pseudonym."""
    owner = world.ids["owner1"]
    assert client.post(f"/v1/grants/{world.ids['grant1']}/suspend", headers=world.auth("owner1"), json={"reason": "rent"}).status_code == 200
    erased = client.post(f"/v1/people/{owner}/erase", headers=world.auth("admin_a"), json=REQUEST)
    assert erased.status_code == 200, erased.text
    unit = client.get(f"/v1/units/{world.ids['unit1']}", headers=world.auth("admin_a")).json()
    assert unit["owner_id"] is None
    assert client.get(f"/v1/people/{world.ids['tenant1']}", headers=world.auth("admin_a")).status_code == 200
    with ctx.db.session() as s:
        suspended = s.scalars(select(AuditEvent).where(AuditEvent.kind == "grant.suspended")).one()
        assert suspended.actor.startswith("pseudonym:") and suspended.person_id is None and suspended.subject is not None
        assert "reason" not in suspended.data
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.actor == f"person:{owner}")) == 0
    assert client.get("/v1/audit/verify", headers=world.auth("district")).json()["ok"] is True
