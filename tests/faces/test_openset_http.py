"""A park gate with 100+ people enrolled from faces-calib over HTTP: strangers are let in no more often
than the calibration promised at the gate's N, and nobody is let in as someone else.

People the test has never enrolled walk up as strangers (the East Asian group first, as the site's
population is Chinese); enrolled people with a second photo come back with it. The thresholds come
from the shipped calibration, which was computed on these photos: this checks that the service
applies it over HTTP as measured (N, threshold, search among the gate's people), not the model.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from idsvc.auth import service as keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.faces.calibrate import read_exclusions, read_labelled
from idsvc.faces.policy import load_calibration
from idsvc.faces.simulation import clopper_pearson
from idsvc.registry import doors, grants, people, schemas, sites
from idsvc.registry.models import DeviceKind, DoorKind, PersonKind
from tests.conftest import REPO_ROOT
from tests.prerequisites import missing

pytestmark = pytest.mark.usefixtures("engine")

ENROL = 130  # attempted; a few LFW photos fail the enrolment quality gate
EXCLUDE = REPO_ROOT / "models" / "calibration" / "faces-calib.exclude"


@pytest.fixture(scope="module")
def calib_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "faces-calib"
    if not (path / "identities.csv").is_file():
        missing(f"faces-calib not found in {path}")
    return path


def test_strangers_at_a_gate_with_100_plus_people(client, ctx: AppContext, calib_dir: Path) -> None:
    excluded = read_exclusions(EXCLUDE)
    photos_of: dict[str, list[str]] = defaultdict(list)
    group_of: dict[str, str] = {}
    for photo in read_labelled(calib_dir / "identities.csv"):
        if photo.file not in excluded:
            photos_of[photo.identity].append(photo.file)
            group_of[photo.identity] = photo.group
    rng = random.Random(9)
    east_asian = sorted(i for i in photos_of if group_of[i] == "east_asian")
    other = sorted(i for i in photos_of if group_of[i] == "other")
    rng.shuffle(east_asian)
    rng.shuffle(other)
    multi_ea = [i for i in east_asian if len(photos_of[i]) > 1]
    single_ea = [i for i in east_asian if len(photos_of[i]) == 1]
    multi_other = [i for i in other if len(photos_of[i]) > 1]
    single_other = [i for i in other if len(photos_of[i]) == 1]
    to_enrol = multi_ea + single_ea[:25] + multi_other[: ENROL - len(multi_ea) - 25]
    strangers = single_ea[25:] + single_other[:240]

    with ctx.db.session() as s:
        site = sites.create_site(s, OPERATOR, schemas.SiteIn(code="park", name="Park", settings={"faces": {"min_tpir": 0.6}}))
        gate = doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site.id, code="gate-1", name="Gate 1", kind=DoorKind.gate_lane))
        group = doors.create_door_group(s, OPERATOR, schemas.DoorGroupIn(site_id=site.id, name="gates", door_ids=[gate.id]))
        device = doors.create_device(s, OPERATOR, schemas.DeviceIn(site_id=site.id, code="cam-1", name="Cam", kind=DeviceKind.face_camera, door_ids=[gate.id]))
        device_key = keys.issue_key(s, OPERATOR, Role.device, device_id=device.id).token
        admin_key = keys.issue_key(s, OPERATOR, Role.site_admin, site_id=site.id).token
        person_ids = {}
        now = utcnow()
        for identity in to_enrol:
            person = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site.id, display_name=identity, kind=PersonKind.employee))
            grants.create_grant(
                s, OPERATOR, schemas.GrantIn(door_group_id=group.id, person_id=person.id, valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30))
            )
            person_ids[identity] = person.id
        gate_id = gate.id
    admin = {"Authorization": f"Bearer {admin_key}"}
    camera = {"Authorization": f"Bearer {device_key}"}

    enrolled = {}
    for identity in to_enrol:
        pid = person_ids[identity]
        consent = {"method": "signed form", "text_version": "2026-11", "language": "zh-CN"}
        assert client.post(f"/v1/people/{pid}/face/consent", json=consent, headers=admin).status_code == 201
        first = photos_of[identity][0]
        response = client.put(f"/v1/people/{pid}/face", files=[("images", ("p.jpg", (calib_dir / first).read_bytes(), "image/jpeg"))], headers=admin)
        if response.status_code == 200:
            enrolled[identity] = pid
        else:
            assert response.status_code == 422  # the quality gate, with a reason
    assert len(enrolled) >= 100
    # Everyone granted counts for the gate's N, enrolled or not: the safe side for the threshold.
    n = len(to_enrol)

    patched = client.patch(f"/v1/doors/{gate_id}", json={"face_mode": "face_only"}, headers=admin)
    assert patched.status_code == 200, patched.text

    def walk_up(file: str) -> dict:
        form = {"door_id": str(gate_id)}
        return client.post("/v1/device/face-verify", data=form, files={"image": ("f.jpg", (calib_dir / file).read_bytes(), "image/jpeg")}, headers=camera).json()

    calibration = load_calibration(ctx.settings)
    assert calibration is not None
    target = ctx.settings.face_target_fpir
    stranger_attempts = strangers_in = 0
    for identity in strangers:
        result = walk_up(photos_of[identity][0])
        if result["threshold"] is None or result["candidates"] == 0:
            continue
        assert result["candidates"] == len(enrolled)  # searched among the gate's enrolled people only
        # the threshold for this N, whatever the governing group
        assert result["threshold"] == calibration.threshold_for(len(enrolled), target)
        if result["reasons"] and set(result["reasons"]) <= {"no_face", "multiple_faces", "face_too_small", "low_quality"}:
            continue  # never compared
        stranger_attempts += 1
        strangers_in += result["allow"]
    assert stranger_attempts >= 250
    promised = calibration.fpir(len(enrolled), calibration.threshold_for(len(enrolled), target))
    low, high = clopper_pearson(strangers_in, stranger_attempts)
    print(f"\ngate N={len(enrolled)} (granted {n}): strangers let in {strangers_in}/{stranger_attempts}, 95% CI [{low:.4f}, {high:.4f}], promised {promised:.4f}")
    assert low <= promised, f"strangers let in {strangers_in}/{stranger_attempts}: significantly more than the promised {promised:.2%}"

    returning = accepted = wrong = 0
    for identity, pid in enrolled.items():
        if len(photos_of[identity]) < 2:
            continue
        result = walk_up(photos_of[identity][1])
        if result["threshold"] is None:
            continue
        returning += 1
        accepted += result["allow"] and result["person_id"] == pid
        wrong += result["allow"] and result["person_id"] != pid
    predicted = calibration.tpir(calibration.threshold_for(len(enrolled), target))
    tpir_low, tpir_high = clopper_pearson(accepted, returning)
    print(f"returning people let in {accepted}/{returning}, 95% CI [{tpir_low:.3f}, {tpir_high:.3f}], calibration predicts >= {predicted:.3f}")
    assert wrong == 0
    assert tpir_high >= predicted
