"""Consent, enrolment and door verification over HTTP, with every role's scope."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from idsvc.audit.models import AuditEvent
from idsvc.auth import service as keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.sealing import SealingError
from idsvc.faces.engine import FaceEngine
from idsvc.faces.gallery import open_embedding
from idsvc.faces.models import FaceTemplate
from idsvc.registry import doors, schemas
from idsvc.faces.policy import load_calibration
from idsvc.registry.models import DeviceKind, Door, FaceMode, Site
from tests.faces.conftest import encode

pytestmark = pytest.mark.usefixtures("engine")
BLANK = encode(np.full((480, 640, 3), 128, np.uint8))


def consent(client, world, person: str, who: str = "admin_a"):  # noqa: ANN001, ANN201
    return client.post(f"/v1/people/{world.ids[person]}/face/consent", json={"method": "signed form", "text_version": "2026-11", "language": "zh-CN"}, headers=world.auth(who))


def enrol(client, world, person: str, photos: list[bytes], who: str = "admin_a"):  # noqa: ANN001, ANN201
    files = [("images", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    return client.put(f"/v1/people/{world.ids[person]}/face", files=files, headers=world.auth(who))


def verify(client, world, image: bytes, door: str = "door1", who: str = "device1", person_id: int | None = None, code: str | None = None):  # noqa: ANN001, ANN201
    form = {"door_id": str(world.ids[door])} | ({"person_id": str(person_id)} if person_id else {}) | ({"code": code} if code else {})
    return client.post("/v1/device/face-verify", data=form, files={"image": ("frame.jpg", image, "image/jpeg")}, headers=world.auth(who))


def set_face_mode(ctx: AppContext, door_id: int, mode: FaceMode) -> None:
    """Straight in the database: these tests are about matching, not about the face_only check."""
    with ctx.db.session() as s:
        s.get(Door, door_id).face_mode = mode


def test_consent_comes_first_and_templates_are_sealed_to_their_person(client, world, ctx: AppContext, photo, engine: FaceEngine) -> None:  # noqa: ANN001
    assert enrol(client, world, "tenant1", [photo("img1.jpg")]).json()["error"]["code"] == "consent_required"
    assert consent(client, world, "tenant1").status_code == 201
    response = enrol(client, world, "tenant1", [photo("img1.jpg"), photo("img2.jpg")])
    assert response.status_code == 200, response.text
    assert response.json()["images_used"] == 2 and response.json()["quality"][0]["faces_found"] == 1

    with ctx.db.session() as s:
        template = s.scalar(select(FaceTemplate))
        vector = open_embedding(ctx.sealer, template)
        assert vector.shape == (engine.dim,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
        assert vector.astype("<f4").tobytes() not in template.sealed  # encrypted at rest
        template.person_id = world.ids["tenant2"]  # a blob moved to another person does not open
        with pytest.raises(SealingError):
            open_embedding(ctx.sealer, template)
        s.rollback()

    # re-enrol replaces the one template
    assert enrol(client, world, "tenant1", [photo("img4.jpg")]).json()["images_used"] == 1
    record = client.get(f"/v1/people/{world.ids['tenant1']}/face", headers=world.auth("tenant1")).json()
    assert len(record["templates"]) == 1 and record["consents"][0]["method"] == "signed form"
    assert "sealed" not in str(record)

    # withdrawing consent deletes the template
    withdrawn = client.delete(f"/v1/people/{world.ids['tenant1']}/face/consent", headers=world.auth("tenant1"))
    assert withdrawn.json() == {"templates_deleted": 1}
    assert enrol(client, world, "tenant1", [photo("img1.jpg")]).json()["error"]["code"] == "consent_required"
    with ctx.db.session() as s:
        kinds = list(s.scalars(select(AuditEvent.kind).order_by(AuditEvent.seq)))
    assert kinds.count("face.enrolled") == 2 and "face.consent_withdrawn" in kinds and "face.record_read" in kinds


def test_roles_and_scopes(client, world, photo) -> None:  # noqa: ANN001
    tenant1 = world.ids["tenant1"]
    assert consent(client, world, "tenant1", who="owner2").status_code == 404  # another owner's tenant
    assert consent(client, world, "tenant1", who="admin_b").status_code == 404  # another site's admin
    assert consent(client, world, "tenant1", who="device1").status_code == 404
    assert consent(client, world, "tenant1", who="tenant1").json()["error"]["code"] == "forbidden_role"
    assert consent(client, world, "tenant1", who="owner1").status_code == 201  # the landlord of tenant1's unit
    assert enrol(client, world, "tenant1", [photo("img1.jpg")], who="owner1").status_code == 200
    assert enrol(client, world, "tenant1", [photo("img1.jpg")], who="tenant1").status_code == 403
    assert client.get(f"/v1/people/{tenant1}/face", headers=world.auth("tenant2")).status_code == 404
    assert client.get(f"/v1/people/{tenant1}/face", headers=world.auth("owner2")).status_code == 404
    assert client.delete(f"/v1/people/{tenant1}/face", headers=world.auth("owner2")).status_code == 404
    assert client.delete(f"/v1/people/{tenant1}/face", headers=world.auth("tenant1")).json() == {"templates_deleted": 1}


def test_enrolment_rejections_are_specific(client, world, photo) -> None:  # noqa: ANN001
    consent(client, world, "tenant1")

    def code(photos: list[bytes]) -> tuple[int, str]:
        response = enrol(client, world, "tenant1", photos)
        return response.status_code, response.json()["error"]["code"]

    assert code([BLANK]) == (422, "no_face")
    assert code([photo("couple.jpg")]) == (422, "multiple_faces")
    assert code([b"not an image"]) == (415, "image_invalid")
    assert code([photo("img1.jpg")[:5000]]) == (422, "image_corrupt")
    assert code([photo("img1.jpg"), photo("img3.jpg")]) == (422, "images_disagree")
    response = enrol(client, world, "tenant1", [photo("img1.jpg"), BLANK])
    assert response.json()["error"]["details"]["image"] == 1


def test_door_verification(client, world, ctx: AppContext, photo) -> None:  # noqa: ANN001
    for person, photos in (("tenant1", ["img1.jpg", "img2.jpg"]), ("tenant2", ["img3.jpg"])):
        consent(client, world, person)
        assert enrol(client, world, person, [photo(p) for p in photos]).status_code == 200
    set_face_mode(ctx, world.ids["door1"], FaceMode.face_only)

    allowed = verify(client, world, photo("img4.jpg")).json()
    assert allowed["allow"] is True and allowed["person_id"] == world.ids["tenant1"] and allowed["score"] >= allowed["threshold"]
    # one person may pass door1, so the face was compared with one template, at the threshold for N = 1
    calibration = load_calibration(ctx.settings)
    assert allowed["candidates"] == 1 and allowed["face_mode"] == "face_only"
    assert calibration is not None and allowed["threshold"] == calibration.threshold_for(1, ctx.settings.face_target_fpir)
    unknown = verify(client, world, photo("img13.jpg")).json()  # enrolled nowhere
    assert unknown["allow"] is False and unknown["reasons"] == ["unknown_face"] and unknown["person_id"] is None
    other_flat = verify(client, world, photo("img55.jpg")).json()  # tenant2 at tenant1's flat door
    assert other_flat["allow"] is False and other_flat["person_id"] == world.ids["tenant2"]
    assert other_flat["reasons"] == ["no_grant_for_door", "not_a_candidate"]

    one_to_one = verify(client, world, photo("img4.jpg"), person_id=world.ids["tenant1"]).json()
    assert one_to_one["allow"] is True
    mismatch = verify(client, world, photo("img55.jpg"), person_id=world.ids["tenant1"]).json()
    assert mismatch["allow"] is False and mismatch["reasons"] == ["face_mismatch"]

    assert verify(client, world, photo("couple.jpg")).json()["reasons"] == ["multiple_faces"]
    assert verify(client, world, BLANK).json()["reasons"] == ["no_face"]
    assert verify(client, world, b"garbage").json()["error"]["code"] == "image_invalid"
    assert verify(client, world, photo("img4.jpg"), door="door2").json()["error"]["code"] == "door_not_assigned"
    assert verify(client, world, photo("img4.jpg"), who="admin_a").status_code == 403

    assert ctx.decision_log is not None
    ctx.decision_log.flush()  # decisions reach the trail in batches (audit/decision_log.py)
    with ctx.db.session() as s:
        decisions = s.scalars(select(AuditEvent).where(AuditEvent.kind == "decision").order_by(AuditEvent.seq)).all()
        assert len(decisions) == 7
        assert decisions[0].data["allow"] is True and decisions[0].person_id == world.ids["tenant1"]
        assert decisions[1].data["reasons"] == ["unknown_face"]

    # the gallery follows template changes
    client.delete(f"/v1/people/{world.ids['tenant1']}/face", headers=world.auth("admin_a"))
    assert verify(client, world, photo("img4.jpg")).json()["reasons"] == ["unknown_face"]


def test_templates_stay_in_their_site(client, world, ctx: AppContext, photo) -> None:  # noqa: ANN001
    consent(client, world, "tenant1")
    enrol(client, world, "tenant1", [photo("img1.jpg")])
    with ctx.db.session() as s:
        body = schemas.DeviceIn(site_id=world.ids["site_b"], code="gate-b", name="Gate B", kind=DeviceKind.face_camera, door_ids=[world.ids["entrance_b"]])
        device = doors.create_device(s, OPERATOR, body)
        world.tokens["device_b"] = keys.issue_key(s, OPERATOR, Role.device, device_id=device.id).token
    set_face_mode(ctx, world.ids["entrance_b"], FaceMode.face_only)
    result = verify(client, world, photo("img4.jpg"), door="entrance_b", who="device_b").json()
    assert result["reasons"] == ["unknown_face"] and result["candidates"] == 0


def test_liveness_is_advisory_unless_the_site_enforces_it(client, world, ctx: AppContext, photo) -> None:  # noqa: ANN001
    consent(client, world, "tenant1")
    enrol(client, world, "tenant1", [photo("img1.jpg")])
    set_face_mode(ctx, world.ids["door1"], FaceMode.face_only)

    def set_faces(settings: dict[str, object]) -> None:
        with ctx.db.session() as s:
            site = s.get(Site, world.ids["site_a"])
            site.settings = {**(site.settings or {}), "faces": {"min_tpir": 0.8, **settings}}  # face_only within capacity

    set_faces({"liveness_threshold": 1.0})  # every real photo scores below 1.0: all look "spoofed"
    advisory = verify(client, world, photo("img4.jpg")).json()
    assert advisory["allow"] is True and advisory["warnings"] == ["spoof_suspected"]
    set_faces({"liveness_threshold": 1.0, "liveness_mode": "enforce"})
    enforced = verify(client, world, photo("img4.jpg")).json()
    assert enforced["allow"] is False and enforced["reasons"] == ["spoof_suspected"]
    set_faces({"threshold": 0.99})  # a site's own threshold is a floor under the calibrated one
    assert verify(client, world, photo("img4.jpg")).json()["reasons"] == ["unknown_face"]


def test_missing_pack_is_a_clear_503(client, world, ctx: AppContext, photo, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(ctx.settings, "models_dir", tmp_path)
    response = verify(client, world, photo("img4.jpg"), person_id=world.ids["tenant1"])
    assert response.status_code == 503
    assert "idsvc models install" in response.json()["error"]["message"]


def test_engine_is_shared(engine: FaceEngine, ctx: AppContext) -> None:
    from idsvc.faces.service import engine_for

    assert engine_for(ctx.settings) is engine
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(FaceTemplate)) == 0


def test_uploaded_photos_never_touch_disk(client, world, photo, monkeypatch) -> None:  # noqa: ANN001
    import io
    from tempfile import SpooledTemporaryFile

    from PIL import Image

    def no_disk(_self: object) -> None:
        raise AssertionError("an uploaded photo was spooled to disk")

    monkeypatch.setattr(SpooledTemporaryFile, "rollover", no_disk)
    large = encode(Image.open(io.BytesIO(photo("img1.jpg"))), "PNG", compress_level=0)
    assert len(large) > 1024 * 1024  # over Starlette's default 1 MB spool limit
    consent(client, world, "tenant1")
    assert enrol(client, world, "tenant1", [large]).status_code == 200


def test_match_face_for_the_pass_path_identifies_without_deciding(client, world, ctx: AppContext, photo) -> None:  # noqa: ANN001
    from idsvc.faces.service import match_face

    consent(client, world, "tenant1")
    enrol(client, world, "tenant1", [photo("img1.jpg")])
    holder = match_face(ctx, world.ids["site_a"], photo("img4.jpg"), world.ids["tenant1"])
    assert holder.person_id == world.ids["tenant1"] and holder.reasons == [] and holder.score >= holder.threshold
    impostor = match_face(ctx, world.ids["site_a"], photo("img20.jpg"), world.ids["tenant1"])
    assert impostor.person_id is None and impostor.reasons == ["face_mismatch"]
    assert match_face(ctx, world.ids["site_a"], photo("img4.jpg"), world.ids["tenant2"]).reasons == ["no_face_template"]
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "decision")) == 0


def test_invalid_site_face_settings_fall_back_to_the_defaults(client, world, ctx: AppContext, photo) -> None:  # noqa: ANN001
    from pydantic import ValidationError

    from idsvc.faces.policy import site_face_settings

    with pytest.raises(ValidationError):
        site_face_settings({"faces": {"threshold": 3}})
    with pytest.raises(ValidationError):
        site_face_settings({"faces": {"liveness_mode": "sometimes"}})
    assert site_face_settings({"faces": {"threshold": 0.5}}).threshold == 0.5
    consent(client, world, "tenant1")
    enrol(client, world, "tenant1", [photo("img1.jpg")])
    with ctx.db.session() as s:
        s.get(Site, world.ids["site_a"]).settings = {"faces": {"threshold": "high", "target_fpir": 0.5}}
    result = verify(client, world, photo("img4.jpg"), person_id=world.ids["tenant1"]).json()
    calibration = load_calibration(ctx.settings)
    assert calibration is not None
    assert result["allow"] is True and result["threshold"] == calibration.threshold_for(1, ctx.settings.face_target_fpir)
