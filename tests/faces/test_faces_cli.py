"""The operator commands: models list, faces compare/evaluate, resumable bulk enrolment, retention purge."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from idsvc.audit.models import AuditEvent
from idsvc.cli import app
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.faces.models import FaceTemplate
from idsvc.faces.service import purge_unneeded_templates

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def cli(ctx: AppContext, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
    """The CLI pointed at the test database and key (commands build their own context from IDSVC_*)."""
    monkeypatch.setenv("IDSVC_EMBEDDING_CACHE", str(tmp_path_factory.mktemp("embeddings")))
    monkeypatch.setenv("IDSVC_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("IDSVC_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("IDSVC_REDIS_URL", ctx.settings.redis_url)
    monkeypatch.setenv("IDSVC_REDIS_PREFIX", ctx.settings.redis_prefix)
    return CliRunner()


def run_json(cli: CliRunner, *args: str, exit_code: int = 0) -> dict:  # type: ignore[type-arg]
    result = cli.invoke(app, list(args))
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def test_models_list_and_compare(cli: CliRunner, faces_dir: Path) -> None:
    listed = run_json(cli, "models", "list")
    assert {"name": listed["configured"], "state": "installed"}.items() <= next(p for p in listed["packs"] if p["default"]).items()
    same = run_json(cli, "faces", "compare", str(faces_dir / "img1.jpg"), str(faces_dir / "img2.jpg"))
    assert same["verdict"] == "same person" and same["similarity"] >= same["threshold"]
    other = run_json(cli, "faces", "compare", str(faces_dir / "img1.jpg"), str(faces_dir / "img3.jpg"))
    assert other["verdict"] == "different people"
    bad = cli.invoke(app, ["faces", "compare", str(faces_dir / "identities.csv"), str(faces_dir / "img1.jpg")])
    assert bad.exit_code == 1 and "[image_invalid]" in bad.output


def test_evaluate_writes_a_report(cli: CliRunner, faces_dir: Path, tmp_path: Path) -> None:
    summary = run_json(cli, "faces", "evaluate", str(faces_dir), "--identities", str(faces_dir / "identities.csv"), "--report", str(tmp_path))
    assert summary["faces_found"] == 40 and summary["genuine_pairs"] == 90 and summary["impostor_pairs"] == 690
    assert {"tar_at_far_0.01", "tar_at_far_0.001", "eer", "false_accepts", "false_rejects", "suggested_threshold"} <= summary.keys()
    for name in ("roc.png", "histogram.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "roc.png" in (tmp_path / "index.html").read_text()
    # open set, per group (one group here: the CSV has none): N = 1 simulated on 9 people, larger N by formula
    table = summary["openset"]["all"]
    assert [row["n"] for row in table] == [1, 10, 100, 1000, 10000]
    assert table[0]["method"] == "simulated" and 0 <= table[0]["fpir"] <= 1 and table[1]["method"] == "formula"


def test_calibrate_writes_a_calibration_the_service_loads(cli: CliRunner, faces_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from idsvc.faces.openset import Calibration

    cache = tmp_path / "cache"
    monkeypatch.setenv("IDSVC_EMBEDDING_CACHE", str(cache))
    out = tmp_path / "calibration.json"
    sheet = tmp_path / "ids.csv"
    rows = (faces_dir / "identities.csv").read_text().splitlines()
    # two groups, to see one govern: the first four people against the rest
    people = sorted({r.split(",")[1] for r in rows[1:]})
    sheet.write_text("file,identity,group\n" + "".join(f"{r},{'a' if r.split(',')[1] in people[:4] else 'b'}\n" for r in rows[1:]))
    summary = run_json(cli, "faces", "calibrate", str(faces_dir), "--identities", str(sheet), "--output", str(out), "--repeats", "5")
    assert summary["written"] == str(out) and set(summary["groups"]) == {"a", "b"}
    calibration = Calibration.load(out)
    assert calibration.provenance["faces_found"] == 40 and "idsvc faces calibrate" in calibration.provenance["command"]
    assert calibration.threshold_for(10, 0.001) > calibration.threshold_for(1, 0.001)
    assert any(cache.rglob("*.npy"))  # the rerun reads the cache
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("no-such.jpg  # typo\n")
    bad = cli.invoke(app, ["faces", "calibrate", str(faces_dir), "--identities", str(sheet), "--exclude", str(exclude), "--output", str(out)])
    assert bad.exit_code == 1 and "no-such.jpg" in bad.output
    bad = cli.invoke(app, ["faces", "calibrate", str(faces_dir), "--identities", str(faces_dir / "img1.jpg")])
    assert bad.exit_code == 1 and "Traceback" not in bad.output


def test_bulk_enrolment_reports_per_file_and_resumes(cli: CliRunner, world, ctx: AppContext, faces_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    sheet = tmp_path / "people.csv"
    rows = [("img1.jpg", "tenant1"), ("couple.jpg", "tenant2"), ("missing.jpg", "owner1"), ("img20.jpg", "owner2")]
    with sheet.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "person_id"])
        writer.writerows((f, world.ids[p]) for f, p in rows)

    first = run_json(cli, "faces", "bulk-enrol", str(faces_dir), "--csv", str(sheet), exit_code=2)
    assert first == {"rows": 4, "enrolled_total": 0, "failed": 4, "error_report": str(tmp_path / "people.errors.csv")}
    assert {r["code"] for r in csv.DictReader((tmp_path / "people.errors.csv").open())} == {"consent_required", "unreadable"}

    second = run_json(cli, "faces", "bulk-enrol", str(faces_dir), "--csv", str(sheet), "--consent-method", "signed form", "--consent-text-version", "2026-11", "--consent-language", "zh-CN", exit_code=2)
    assert second["enrolled_total"] == 2 and second["failed"] == 2
    errors = {r["file"]: r["code"] for r in csv.DictReader((tmp_path / "people.errors.csv").open())}
    assert errors == {"couple.jpg": "multiple_faces", "missing.jpg": "unreadable"}

    third = run_json(cli, "faces", "bulk-enrol", str(faces_dir), "--csv", str(sheet), "--consent-method", "signed form", "--consent-text-version", "2026-11", "--consent-language", "zh-CN", exit_code=2)
    assert third["enrolled_total"] == 2
    with ctx.db.session() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.kind == "face.enrolled")).all()) == 2  # finished rows not redone
        assert len(s.scalars(select(FaceTemplate)).all()) == 2


def test_templates_outlive_the_last_grant_by_the_grace_period_only(cli: CliRunner, world, ctx: AppContext, faces_dir: Path) -> None:  # noqa: ANN001
    run_json(cli, "faces", "consent", str(world.ids["tenant1"]), "--method", "signed form", "--text-version", "2026-11", "--language", "zh-CN")
    run_json(cli, "faces", "enrol", str(world.ids["tenant1"]), str(faces_dir / "img1.jpg"))
    grace = timedelta(days=7)
    with ctx.db.session() as s:  # the world's tenancy runs 30 days from now
        assert purge_unneeded_templates(s, grace, now=utcnow() + timedelta(days=35)) == []
        assert purge_unneeded_templates(s, grace, now=utcnow() + timedelta(days=38)) == [world.ids["tenant1"]]
        assert s.scalars(select(FaceTemplate)).all() == []


def test_door_face_mode_from_the_cli(cli: CliRunner, world, ctx: AppContext) -> None:  # noqa: ANN001
    from idsvc.registry.models import Site

    with ctx.db.session() as s:
        s.get(Site, world.ids["site_a"]).settings = {"faces": {"min_tpir": 0.999}}
    refused = cli.invoke(app, ["door", "face-mode", str(world.ids["entrance_a"]), "face_only"])
    assert refused.exit_code == 1 and "[face_only_unsafe]" in refused.output and "face_and_code" in refused.output
    assert run_json(cli, "door", "face-mode", str(world.ids["entrance_a"]), "face_and_code")["face_mode"] == "face_and_code"
    with ctx.db.session() as s:
        s.get(Site, world.ids["site_a"]).settings = {"faces": {"min_tpir": 0.8}}
    assert run_json(cli, "door", "face-mode", str(world.ids["entrance_a"]), "face_only")["face_mode"] == "face_only"
    bad = cli.invoke(app, ["door", "face-mode", str(world.ids["entrance_a"]), "sometimes"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
