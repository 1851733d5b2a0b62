"""Per-door face policy over HTTP: the 409 for an unsafe face_only door, face_and_code, face_and_pass,
off, and the crowded-frame rule."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from idsvc.context import AppContext
from idsvc.faces.policy import load_calibration
from tests.faces.conftest import encode
from tests.faces.test_faces_api import consent, enrol, set_face_mode, verify
from idsvc.registry.models import FaceMode

pytestmark = pytest.mark.usefixtures("engine")


def patch_door(client, world, door: str, mode: str):  # noqa: ANN001, ANN201
    return client.patch(f"/v1/doors/{world.ids[door]}", json={"face_mode": mode}, headers=world.auth("admin_a"))


def set_site_faces(client, world, **faces: object) -> None:  # noqa: ANN001
    response = client.patch(f"/v1/sites/{world.ids['site_a']}", json={"settings": {"faces": faces}}, headers=world.auth("admin_a"))
    assert response.status_code == 200, response.text


def test_face_only_is_refused_where_the_pack_cannot_reach_the_site_targets(client, world, ctx: AppContext) -> None:  # noqa: ANN001
    calibration = load_calibration(ctx.settings)
    assert calibration is not None
    # A site asking for more tenants recognised than the pack can give even at one person is refused.
    set_site_faces(client, world, min_tpir=0.999)
    refused = patch_door(client, world, "door1", "face_only")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "face_only_unsafe" and "face_and_code" in error["message"]
    assert error["details"]["people_at_door"] == 1 and error["details"]["max_people"] == calibration.max_gallery(0.001, 0.999) == 0
    assert error["details"]["alternatives"] == ["face_and_pass", "face_and_code"]
    assert error["details"]["tpir_at_door"] < 0.999 and error["details"]["threshold_at_door"] == calibration.threshold_for(1, 0.001)
    assert client.get(f"/v1/doors/{world.ids['door1']}", headers=world.auth("admin_a")).json()["face_mode"] == "face_and_pass"

    # A site that accepts fewer tenants let in by face (the QR still works for the rest) can have it
    # where few people pass; the building entrance serves both flats' tenants.
    capacity = calibration.max_gallery(0.001, 0.8)
    assert capacity >= 2
    set_site_faces(client, world, min_tpir=0.8)
    assert patch_door(client, world, "door1", "face_only").json()["face_mode"] == "face_only"
    assert patch_door(client, world, "entrance_a", "face_only").status_code == 200
    # ... but not with a stricter stranger target at which two people are already too many
    assert patch_door(client, world, "entrance_a", "face_and_pass").status_code == 200
    set_site_faces(client, world, min_tpir=0.8, target_fpir=1e-7)
    strict = patch_door(client, world, "entrance_a", "face_only")
    assert strict.status_code == 409 and strict.json()["error"]["details"]["people_at_door"] == 2
    # the other modes are always allowed: they narrow the search, and a pass always works anyway
    for mode in ("face_and_code", "face_and_pass", "off"):
        assert patch_door(client, world, "entrance_a", mode).json()["face_mode"] == mode
    assert patch_door(client, world, "entrance_a", "sometimes").status_code == 422


def test_face_and_code_searches_only_the_unit_keyed(client, world, ctx: AppContext, photo) -> None:  # noqa: ANN001
    for person, image in (("tenant1", "img1.jpg"), ("tenant2", "img3.jpg")):
        consent(client, world, person)
        assert enrol(client, world, person, [photo(image)]).status_code == 200
    assert patch_door(client, world, "entrance_a", "face_and_code").status_code == 200
    device = client.post(
        "/v1/devices", json={"site_id": world.ids["site_a"], "code": "gate-a", "name": "Gate", "kind": "face_camera", "door_ids": [world.ids["entrance_a"]]},
        headers=world.auth("admin_a"),
    ).json()
    key = client.post("/v1/api-keys", json={"role": "device", "device_id": device["id"], "label": "gate"}, headers=world.auth("admin_a"))
    world.tokens["gate"] = key.json()["token"]

    def at_gate(image: str, code: str | None = None) -> dict:
        return verify(client, world, photo(image), door="entrance_a", who="gate", code=code).json()

    assert at_gate("img4.jpg")["reasons"] == ["code_required"]
    assert at_gate("img4.jpg", code="999")["reasons"] == ["code_unknown"]
    allowed = at_gate("img4.jpg", code="101")  # tenant1's face, tenant1's flat
    assert allowed["allow"] is True and allowed["person_id"] == world.ids["tenant1"]
    calibration = load_calibration(ctx.settings)
    assert allowed["candidates"] == 1 and allowed["threshold"] == calibration.threshold_for(1, 0.001)  # type: ignore[union-attr]
    # tenant1 may pass the entrance, but not as a person of flat 102: the code cut N to flat 102's people
    wrong_unit = at_gate("img4.jpg", code="102")
    assert wrong_unit["allow"] is False and wrong_unit["reasons"] == ["not_a_candidate"] and wrong_unit["person_id"] == world.ids["tenant1"]
    assert at_gate("img13.jpg", code="102")["reasons"] == ["unknown_face"]  # enrolled nowhere
    # a pass holder (person_id) is checked 1:1 at any face door
    assert verify(client, world, photo("img4.jpg"), door="entrance_a", who="gate", person_id=world.ids["tenant1"]).json()["allow"] is True


def test_face_and_pass_and_off(client, world, ctx: AppContext, photo) -> None:  # noqa: ANN001
    consent(client, world, "tenant1")
    enrol(client, world, "tenant1", [photo("img1.jpg")])
    # door1 is face_and_pass, the default: a face alone is not enough, the pass holder's face is
    alone = verify(client, world, photo("img4.jpg")).json()
    assert alone["allow"] is False and alone["reasons"] == ["pass_required"] and alone["threshold"] is None
    holder = verify(client, world, photo("img4.jpg"), person_id=world.ids["tenant1"]).json()
    assert holder["allow"] is True and holder["candidates"] == 1 and holder["face_mode"] == "face_and_pass"
    set_face_mode(ctx, world.ids["door1"], FaceMode.off)
    off = verify(client, world, photo("img4.jpg"), person_id=world.ids["tenant1"]).json()
    assert off["allow"] is False and off["reasons"] == ["face_not_enabled"]


def _frame(subject: bytes, other: bytes, subject_side: int, other_side: int, other_at: tuple[int, int]) -> bytes:
    canvas = Image.new("RGB", (1280, 960), (90, 90, 90))
    big = Image.open(io.BytesIO(subject)).convert("RGB")
    big.thumbnail((subject_side, subject_side))
    canvas.paste(big, ((1280 - big.width) // 2, (960 - big.height) // 2))
    small = Image.open(io.BytesIO(other)).convert("RGB")
    small.thumbnail((other_side, other_side))
    canvas.paste(small, other_at)
    return encode(canvas)


def test_a_crowded_frame_verifies_the_clear_subject(client, world, ctx: AppContext, photo) -> None:  # noqa: ANN001
    consent(client, world, "tenant1")
    enrol(client, world, "tenant1", [photo("img1.jpg")])
    set_face_mode(ctx, world.ids["door1"], FaceMode.face_only)
    # tenant1 in front, a stranger (img13) smaller in the queue behind, at the frame's edge
    queue = _frame(photo("img4.jpg"), photo("img13.jpg"), 700, 300, (960, 40))
    result = verify(client, world, queue).json()
    assert result["allow"] is True and result["person_id"] == world.ids["tenant1"]
    assert "other_faces_ignored" in result["warnings"] and result["quality"]["other_faces"] == 1
    # two faces of one size side by side: who is the subject is ambiguous, so refuse
    side_by_side = Image.new("RGB", (1400, 700), (90, 90, 90))
    for x, name in ((0, "img4.jpg"), (700, "img13.jpg")):
        face = Image.open(io.BytesIO(photo(name))).convert("RGB").resize((700, 700))
        side_by_side.paste(face, (x, 0))
    assert verify(client, world, encode(side_by_side)).json()["reasons"] == ["multiple_faces"]
    # a site may demand a larger margin than this frame offers: then the queue frame is refused too
    set_site_faces(client, world, subject_margin=4.0, min_tpir=0.8)
    assert verify(client, world, queue).json()["reasons"] == ["multiple_faces"]
