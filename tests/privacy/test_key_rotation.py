"""`idsvc keys rotate` re-seals people, templates, issuer keys and feed keys under the new master key,
in batches, while writes continue; the old key can then be dropped."""

from __future__ import annotations

import base64
import threading

import numpy as np
from sqlalchemy import select

from idsvc.alarms import sensors
from idsvc.alarms.models import Sensor, SensorFamily, SensorKind
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import Database
from idsvc.core.sealing import Sealer, new_master_key
from idsvc.faces import gallery
from idsvc.faces import service as faces
from idsvc.faces.models import FaceTemplate
from idsvc.passes import issuing, keys
from idsvc.privacy import rotation
from idsvc.registry import people, personal, schemas
from idsvc.registry.models import Person, PersonKind
from idsvc.sync import feed
from tests.privacy.conftest import Cli
from tests.world import World


def _keys(ctx: AppContext) -> tuple[str, str]:
    return (ctx.settings.data_dir / "master.key").read_text().strip(), new_master_key()


def test_rotation_moves_every_sealed_row_and_the_old_key_can_go(ctx: AppContext, world: World, cli: Cli, monkeypatch) -> None:  # noqa: ANN001
    site, tenant = world.ids["site_a"], world.ids["tenant1"]
    vector = np.linspace(-1, 1, 512, dtype=np.float32)
    with ctx.db.session() as s:
        s.add_all(people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site, display_name=f"租客{n}", kind=PersonKind.tenant, phone=f"+86 138 0000 {n:04d}")) for n in range(7))
        consent = faces.record_consent(s, OPERATOR, tenant, method="signed form", text_version="2026-11", language="zh-CN")
        s.add(FaceTemplate(site_id=site, person_id=tenant, consent_id=consent.id, pack="p1", dim=512, sealed=gallery.seal_embedding(ctx.sealer, vector, site, tenant, "p1"), images_used=1, quality=[], created_by="t"))
        issuing.issue(s, ctx.sealer, OPERATOR, tenant)  # creates the root and issuer keys
        face_key = feed.site_face_key(s, ctx.sealer, site)
        station = sensors.create(s, ctx.sealer, OPERATOR, sensors.NewSensor(
            site_id=site, building_id=world.ids["building_a"], code="88888880000001", name="Station", family=SensorFamily.hj212,
            kind=SensorKind.emission_station, password="123456"))
    old, new = _keys(ctx)
    monkeypatch.setenv("IDSVC_MASTER_KEY", f"{new},{old}")
    before = cli.json("keys", "status")
    assert before["people"] == {"current_key": 0, "older_keys": 11} and before["face_templates"]["older_keys"] == 1
    out = cli.json("keys", "rotate", "--batch", "4")
    assert out["resealed"] == {"people": 11, "face_templates": 1, "pass_issuer_keys": 2, "sync_site_keys": 1, "sensors": 1}
    assert all(counts["older_keys"] == 0 for counts in out["status"].values())
    assert set(cli.json("keys", "rotate")["resealed"].values()) == {0}
    only_new = Sealer([base64.b64decode(new)])
    db = Database(ctx.db.url, only_new)
    try:
        with db.session() as s:
            names = sorted(personal.read(s, p).display_name for p in s.scalars(select(Person)))
            assert "租客3" in names and len(names) == 11
            assert s.scalar(select(Person.id).where(Person.site_id == site, personal.with_phone(s, "+8613800000003"))) is not None
            assert np.array_equal(gallery.open_embedding(only_new, s.scalar(select(FaceTemplate))), vector)
            assert feed.site_face_key(s, only_new, site) == face_key
            keys.signing_key(keys.active_issuer_key(s, only_new), only_new)  # opens
            assert only_new.open(s.get(Sensor, station.id).sealed_password, sensors.password_aad(station.id)) == b"123456"  # type: ignore[union-attr]
    finally:
        db.dispose()


def test_rotation_never_overwrites_a_change_made_meanwhile(ctx: AppContext, world: World) -> None:
    """Requests keep changing phones while rows move: every last write survives, under the new key."""
    old, new = _keys(ctx)
    both = Sealer([base64.b64decode(new), base64.b64decode(old)])
    site = world.ids["site_a"]
    with ctx.db.session() as s:
        ids = [people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site, display_name=f"P{n}", kind=PersonKind.tenant)).id for n in range(60)]
    db = Database(ctx.db.url, both)
    last: dict[int, str] = {}
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            person_id = ids[n % len(ids)]
            phone = f"+86 139 {n:08d}"
            with db.session() as s:
                people.update_person(s, OPERATOR, person_id, schemas.PersonPatch(phone=phone))
            last[person_id] = phone
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        moved = rotation.rotate(db, both, batch=5)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert last, "the writer made no change during the rotation"
    rotation.rotate(db, both, batch=5)  # what the writer sealed is under NEW already: nothing left
    assert rotation.status(db, both)["people"]["older_keys"] == 0
    with db.session() as s:
        for person_id, phone in last.items():
            assert personal.read(s, s.get(Person, person_id)).phone == phone  # type: ignore[arg-type]
    assert moved["people"] >= len(ids) - len(last)  # rows the writer did not touch were moved by the rotation
    db.dispose()
