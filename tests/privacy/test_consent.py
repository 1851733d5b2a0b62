"""Separate consent records: one per purpose, naming the consent text's version and language and how
it was given; enrolment refuses without face_access consent; the tenant withdraws with one call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from idsvc.context import AppContext
from idsvc.core.db import Database
from idsvc.db.migrate import upgrade
from idsvc.faces.models import ConsentPurpose, FaceConsent, FaceTemplate
from tests.privacy.conftest import consent_body, enrol
from tests.privacy.databases import fresh_database
from tests.world import World


def _consent(client: TestClient, world: World, person: str, who: str = "admin_a", **body: object) -> object:
    return client.post(f"/v1/people/{world.ids[person]}/face/consent", json=consent_body(**body), headers=world.auth(who))


@pytest.mark.parametrize(
    "missing", [{"text_version": None}, {"language": None}, {"language": "chinese"}, {"text_version": "v 1"}, {"purpose": "marketing"}, {"extra": 1}]
)
def test_a_consent_names_purpose_text_version_and_language(client: TestClient, world: World, missing: dict[str, object]) -> None:
    body = {k: v for k, v in {**consent_body(), **missing}.items() if v is not None}
    response = client.post(f"/v1/people/{world.ids['tenant1']}/face/consent", json=body, headers=world.auth("admin_a"))
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"


def test_enrolment_needs_face_access_consent_and_the_tenant_withdraws_in_one_call(
    ctx: AppContext, client: TestClient, world: World, photo: Callable[[str], bytes]
) -> None:
    tenant = world.ids["tenant1"]
    offline = _consent(client, world, "tenant1", purpose="face_offline")
    assert offline.status_code == 201  # a consent, but for another purpose
    refused = enrol(client, world, tenant, photo("img1.jpg"))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "consent_required"
    assert refused.json()["error"]["details"] == {"purpose": "face_access"}
    given = _consent(client, world, "tenant1", language="zh-Hans-CN", given_at="2026-11-30T20:00:00+08:00")
    assert given.status_code == 201
    assert {k: given.json()[k] for k in ("purpose", "text_version", "language", "method")} == {
        "purpose": "face_access", "text_version": "2026-11", "language": "zh-Hans-CN", "method": "signed form",
    }
    assert enrol(client, world, tenant, photo("img1.jpg")).status_code == 200
    record = client.get(f"/v1/people/{tenant}/face", headers=world.auth("tenant1")).json()
    assert [(c["purpose"], c["withdrawn_at"]) for c in record["consents"]] == [("face_offline", None), ("face_access", None)]
    # One call by the tenant themself: every consent withdrawn, the template gone.
    withdrawn = client.delete(f"/v1/people/{tenant}/face/consent", headers=world.auth("tenant1"))
    assert withdrawn.status_code == 200 and withdrawn.json() == {"templates_deleted": 1}
    with ctx.db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(FaceTemplate).where(FaceTemplate.person_id == tenant)) == 0
        consents = s.scalars(sa.select(FaceConsent).where(FaceConsent.person_id == tenant)).all()
        assert all(c.withdrawn_at is not None and c.withdrawn_by == f"person:{tenant}" for c in consents)
    assert enrol(client, world, tenant, photo("img1.jpg")).json()["error"]["code"] == "consent_required"


def test_withdrawing_only_the_offline_copy_keeps_the_template(client: TestClient, world: World, photo: Callable[[str], bytes]) -> None:
    tenant = world.ids["tenant1"]
    _consent(client, world, "tenant1")
    _consent(client, world, "tenant1", purpose="face_offline")
    assert enrol(client, world, tenant, photo("img1.jpg")).status_code == 200
    response = client.delete(f"/v1/people/{tenant}/face/consent", params={"purpose": "face_offline"}, headers=world.auth("tenant1"))
    assert response.json() == {"templates_deleted": 0}
    record = client.get(f"/v1/people/{tenant}/face", headers=world.auth("tenant1")).json()
    assert len(record["templates"]) == 1
    assert {c["purpose"]: c["withdrawn_at"] is not None for c in record["consents"]} == {"face_access": False, "face_offline": True}


def test_another_tenant_cannot_withdraw_for_someone(client: TestClient, world: World) -> None:
    _consent(client, world, "tenant1")
    response = client.delete(f"/v1/people/{world.ids['tenant1']}/face/consent", headers=world.auth("tenant2"))
    assert response.status_code == 404


def test_consents_recorded_before_purposes_were_codes_are_kept(tmp_path: Path) -> None:
    with fresh_database(tmp_path) as url:
        upgrade(url, "0003_faces")
        engine = sa.create_engine(url)
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO sites (id, code, name, timezone, settings, created_at) VALUES (1, 's', 'S', 'UTC', '{}', '2026-01-01 00:00:00')"))
            c.execute(sa.text("INSERT INTO people (id, site_id, display_name, kind, pseudonym, status, created_at) VALUES (1, 1, 'x', 'tenant', 'ab', 'active', '2026-01-01 00:00:00')"))
            c.execute(sa.text(
                "INSERT INTO face_consents (id, site_id, person_id, purpose, method, given_at, recorded_by, recorded_at) "
                "VALUES (1, 1, 1, 'door access by face at this site', 'signed form', '2026-01-01 00:00:00', 'operator', '2026-01-01 00:00:00')"
            ))
        engine.dispose()
        upgrade(url, "0008_consent_records")
        db = Database(url)
        with db.session() as s:
            consent = s.get(FaceConsent, 1)
            assert consent is not None
            assert (consent.purpose, consent.legacy_purpose, consent.text_version, consent.language) == (
                ConsentPurpose.face_access, "door access by face at this site", "unrecorded", "und",
            )
        db.dispose()
