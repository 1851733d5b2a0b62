"""The filing threshold (2025 face-recognition measures, art. 15): counts per site and for the
deployment, a warning before the threshold, new enrolments refused past the configured ceiling
until an operator confirms the filing. Small thresholds stand in for 90,000 and 100,000."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from idsvc.app import create_app
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.faces import gallery
from idsvc.faces import service as faces
from idsvc.faces.models import FaceTemplate
from idsvc.registry import people, schemas
from idsvc.registry.models import PersonKind
from tests.privacy.conftest import Cli, consent_body
from tests.world import World


@pytest.fixture
def small(ctx: AppContext) -> Iterator[TestClient]:
    """The service with a warning at 2 enrolled people and the ceiling at 3."""
    node = AppContext.from_settings(ctx.settings.model_copy(update={"face_filing_warning_at": 2, "face_filing_ceiling": 3}))
    try:
        with TestClient(create_app(node)) as client:
            yield client
    finally:
        node.close()


def _template(ctx: AppContext, site_id: int, person_id: int) -> None:
    with ctx.db.session() as s:
        consent = faces.record_consent(s, OPERATOR, person_id, method="signed form", text_version="2026-11", language="zh-CN")
        s.add(FaceTemplate(site_id=site_id, person_id=person_id, consent_id=consent.id, pack="p1", dim=512,
                           sealed=gallery.seal_embedding(ctx.sealer, np.ones(512, np.float32), site_id, person_id, "p1"), images_used=1, quality=[], created_by="t"))


def _enrol(client: TestClient, world: World, person_id: int) -> object:
    return client.put(f"/v1/people/{person_id}/face", files=[("images", ("f.jpg", b"not looked at", "image/jpeg"))], headers=world.auth("admin_a"))


def test_enrolment_stops_at_the_ceiling_until_the_filing_is_confirmed(ctx: AppContext, small: TestClient, world: World) -> None:
    district = world.auth("district")
    assert small.get("/v1/faces/filing", headers=district).json()["status"] == "ok"
    _template(ctx, world.ids["site_a"], world.ids["tenant1"])
    _template(ctx, world.ids["site_a"], world.ids["tenant2"])
    assert small.get("/v1/faces/filing", headers=district).json()["status"] == "warning"
    with ctx.db.session() as s:
        visitor = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=world.ids["site_b"], display_name="V", kind=PersonKind.visitor)).id
        newcomer = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=world.ids["site_a"], display_name="N", kind=PersonKind.tenant)).id
    _template(ctx, world.ids["site_b"], visitor)
    status = small.get("/v1/faces/filing", headers=district).json()
    assert status["status"] == "filing_required"
    assert status["district"] == {"people_enrolled": 3, "warning_at": 2, "ceiling": 3}
    assert status["sites"] == [{"site_id": world.ids["site_a"], "people_enrolled": 2}, {"site_id": world.ids["site_b"], "people_enrolled": 1}]

    small.post(f"/v1/people/{newcomer}/face/consent", headers=world.auth("admin_a"), json=consent_body())
    refused = _enrol(small, world, newcomer)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "face_filing_required" and refused.json()["error"]["details"] == {"people_enrolled": 3, "ceiling": 3}
    # Someone already enrolled may be enrolled again: the count does not grow.
    assert _enrol(small, world, world.ids["tenant1"]).json()["error"]["code"] != "face_filing_required"

    assert small.post("/v1/faces/filing", headers=world.auth("admin_a"), json={"reference": "粤网信备 440000000000001"}).status_code == 403
    confirmed = small.post("/v1/faces/filing", headers=district, json={"reference": "粤网信备 440000000000001"})
    assert confirmed.status_code == 201
    assert confirmed.json()["status"] == "filed" and confirmed.json()["filing"]["reference"] == "粤网信备 440000000000001"
    assert confirmed.json()["filing"]["people_enrolled"] == 3
    assert _enrol(small, world, newcomer).json()["error"]["code"] != "face_filing_required"  # on to the photos
    kinds = [e["kind"] for e in small.get("/v1/audit/events", params={"kind": "face.filing_confirmed"}, headers=district).json()["events"]]
    assert kinds == ["face.filing_confirmed"]


@pytest.mark.parametrize(("who", "code"), [("admin_a", 200), ("owner1", 403), ("tenant1", 403), ("device1", 403)])
def test_who_sees_the_counts(ctx: AppContext, client: TestClient, world: World, who: str, code: int) -> None:
    _template(ctx, world.ids["site_a"], world.ids["tenant1"])
    with ctx.db.session() as s:
        other = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=world.ids["site_b"], display_name="B", kind=PersonKind.tenant)).id
    _template(ctx, world.ids["site_b"], other)
    response = client.get("/v1/faces/filing", headers=world.auth(who))
    assert response.status_code == code
    if code == 200:  # a site admin: the deployment's total, their own site's count only
        assert response.json()["district"]["people_enrolled"] == 2 and response.json()["sites"] == [{"site_id": world.ids["site_a"], "people_enrolled": 1}]


def test_filing_from_the_command_line(ctx: AppContext, world: World, cli: Cli) -> None:
    _template(ctx, world.ids["site_a"], world.ids["tenant1"])
    assert cli.json("faces", "filing", "status")["district"]["people_enrolled"] == 1
    out = cli.json("faces", "filing", "confirm", "--reference", "filed 2026-12-01")
    assert out["status"] == "filed" and out["filing"]["confirmed_by"] == "operator"
    code, output = cli.run("faces", "filing", "confirm", "--reference", "")
    assert code == 1 and "reference" in output


def test_metrics_count_enrolled_faces_per_site(ctx: AppContext, client: TestClient, world: World) -> None:
    def enrolled() -> dict[str, float]:
        families = text_string_to_metric_families(client.get("/metrics").text)
        return {s.labels["site"]: s.value for f in families if f.name == "idsvc_face_enrolled_people" for s in f.samples}

    assert enrolled() == {}
    _template(ctx, world.ids["site_a"], world.ids["tenant1"])
    _template(ctx, world.ids["site_a"], world.ids["tenant2"])
    assert enrolled() == {str(world.ids["site_a"]): 2.0}
    with ctx.db.session() as s:
        s.query(FaceTemplate).delete()
    assert enrolled() == {}  # a site whose templates went is not reported with its old count
