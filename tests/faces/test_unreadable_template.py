"""Defect 8 of issue 11: one face template that cannot be opened is skipped with an alarm; face
verification at its site keeps working for everyone else (it answered 500 for every face before)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from idsvc.context import AppContext
from idsvc.faces.gallery import bump_version
from idsvc.faces.models import FaceTemplate
from idsvc.registry.models import FaceMode
from tests.faces.test_faces_api import consent, enrol, set_face_mode, verify
from tests.world import World

pytestmark = pytest.mark.usefixtures("engine")


def _spoil_template(ctx: AppContext, person_id: int) -> None:
    """Flip a byte of the sealed template, as an edited row or a key gone from IDSVC_MASTER_KEY leaves it."""
    with ctx.db.session() as s:
        template = s.scalar(select(FaceTemplate).where(FaceTemplate.person_id == person_id))
        assert template is not None
        template.sealed = template.sealed[:-1] + bytes([template.sealed[-1] ^ 1])
        bump_version(s, template.site_id)  # every node reloads the site's gallery


def test_a_spoiled_template_is_skipped_and_alarmed(client: TestClient, ctx: AppContext, world: World, photo) -> None:
    for person, photos in (("tenant1", ["img1.jpg", "img2.jpg"]), ("tenant2", ["img3.jpg"])):
        consent(client, world, person)
        assert enrol(client, world, person, [photo(p) for p in photos]).status_code == 200
    set_face_mode(ctx, world.ids["door1"], FaceMode.face_only)
    _spoil_template(ctx, world.ids["tenant2"])

    allowed = verify(client, world, photo("img4.jpg"))  # tenant1, whose template is sound
    assert allowed.status_code == 200 and allowed.json()["allow"] is True and allowed.json()["person_id"] == world.ids["tenant1"]
    spoiled = verify(client, world, photo("img55.jpg"))  # tenant2: not found any more, never a 500
    assert spoiled.status_code == 200 and spoiled.json()["allow"] is False and spoiled.json()["person_id"] is None
    one_to_one = verify(client, world, photo("img55.jpg"), person_id=world.ids["tenant2"])
    assert one_to_one.status_code == 200 and one_to_one.json()["reasons"] == ["no_face_template"]

    alarms = client.get("/v1/alarms", headers=world.auth("admin_a")).json()["alarms"]
    raised = [a for a in alarms if a["type"] == "face_template_unreadable"]
    assert len(raised) == 1 and raised[0]["source"] == f"face-template:{world.ids['tenant2']}" and raised[0]["state"] == "active"
    assert raised[0]["severity"] == "major" and raised[0]["data"]["person_id"] == world.ids["tenant2"]
    feed = client.get(f"/v1/sync/sites/{world.ids['site_a']}/feed", headers=world.auth("device1"))
    assert feed.status_code == 200  # the site's bridges still get their feed (without the unreadable template)
