"""The open-set threshold policy (idsvc.faces.openset), the simulation and the exact intervals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from idsvc.faces.openset import FORMAT, Calibration, CalibrationError, group_curves
from idsvc.faces.simulation import betainc, clopper_pearson, simulate_door
from tests.conftest import REPO_ROOT

SHIPPED = sorted((REPO_ROOT / "models" / "calibration").glob("*.json"))


def synthetic(seed: int = 1, people: int = 400, per_person: int = 3, dim: int = 64, spread: float = 1.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, dim))
    photos = np.repeat(centres, per_person, axis=0) + spread * rng.standard_normal((people * per_person, dim))
    return photos / np.linalg.norm(photos, axis=1, keepdims=True), np.repeat(np.arange(people), per_person).astype(str)


def calibrated(photos: np.ndarray, ids: np.ndarray) -> Calibration:
    upper = np.triu_indices(len(ids), 1)
    same = (ids[:, None] == ids[None, :])[upper]
    scores = (photos @ photos.T)[upper]
    return Calibration("test", "plain", {"all": group_curves("all", scores[same], scores[~same])})


def test_the_threshold_rises_with_n_and_keeps_the_promised_rate() -> None:
    calibration = calibrated(*synthetic())
    thresholds = [calibration.threshold_for(n, 0.001) for n in (1, 10, 100, 1000, 10_000)]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == 5
    for n, t in zip((1, 10, 100, 1000, 10_000), thresholds, strict=True):
        assert calibration.fpir(n, t) == pytest.approx(0.001, rel=0.05)
    # a looser target gives a lower threshold
    assert calibration.threshold_for(100, 0.01) < calibration.threshold_for(100, 0.001)
    # max_gallery: the largest N whose threshold still lets min_tpir in
    minimum = calibration.tpir(calibration.threshold_for(50, 0.001))
    largest = calibration.max_gallery(0.001, minimum)
    assert largest >= 50
    assert calibration.tpir(calibration.threshold_for(largest, 0.001)) >= minimum > calibration.tpir(calibration.threshold_for(largest + 1, 0.001))
    assert calibration.max_gallery(0.001, calibration.tpir(calibration.threshold_for(1, 0.001)) + 1e-6) == 0


def test_the_simulated_stranger_rate_matches_the_promise_on_fresh_data() -> None:
    calibration = calibrated(*synthetic(seed=1))
    photos, ids = synthetic(seed=2)  # other people than the calibration's
    counts = simulate_door(photos, ids, 100, lambda n: calibration.threshold_for(n, 0.01), repeats=20, seed=3)
    low, _ = counts.fpir_ci()
    # not significantly above the promise (the exponential tail errs on the strict side here)
    assert counts.stranger_attempts == 20 * 300 * 3 and counts.strangers_accepted > 0 and low <= 0.01
    assert 0.2 < counts.tpir < 1 and counts.misidentified <= counts.mated_attempts * 0.01


def test_file_round_trip_and_clear_errors(tmp_path: Path) -> None:
    calibration = calibrated(*synthetic())
    path = tmp_path / "c.json"
    calibration.dump(path)
    again = Calibration.load(path)
    assert again.threshold_for(123, 0.001) == calibration.threshold_for(123, 0.001)
    raw = json.loads(path.read_text())
    for broken, message in (
        ({**raw, "format": "something/2"}, "format"),
        ({**raw, "groups": {}}, "no groups"),
        ({**raw, "fpir_factor": 0.5}, "fpir_factor"),
        ({**raw, "groups": {"all": {**raw["groups"]["all"], "impostor": [[0.5, 0.1]]}}}, "two or more points"),
        ({**raw, "groups": {"all": {**raw["groups"]["all"], "tail": {"u": 0.3}}}}, "malformed"),
    ):
        path.write_text(json.dumps(broken))
        with pytest.raises(CalibrationError, match=message):
            Calibration.load(path)
    path.write_text("{")
    with pytest.raises(CalibrationError, match="not JSON"):
        Calibration.load(path)
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "absent.json")


@pytest.mark.parametrize("shipped", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_the_shipped_calibrations_are_east_asian_governed_and_documented(shipped: Path) -> None:
    calibration = Calibration.load(shipped)
    assert json.loads(shipped.read_text())["format"] == FORMAT and calibration.pack == shipped.stem
    assert {"east_asian", "other"} == set(calibration.groups)
    assert "faces-calib" in calibration.provenance["data"] and calibration.provenance["excluded"]
    for n in (1, 10, 100, 1000, 10_000):
        assert calibration.governing_group(calibration.threshold_for(n, 0.001)) == "east_asian"
    # docs/models.md quotes the thresholds of this file, in the pack's own section
    models_md = (REPO_ROOT / "docs" / "models.md").read_text()
    section = models_md[models_md.index(f"### The shipped calibration of {calibration.pack}") :]
    section = section[: section.index("\n## ")]
    for n in (1, 10, 100, 1000, 10_000):
        assert f"| {n:,} | {calibration.threshold_for(n, 0.001):.3f} |" in section


def test_clopper_pearson_against_known_values() -> None:
    assert betainc(2, 3, 0.4) == pytest.approx(0.5248, abs=1e-4)
    low, high = clopper_pearson(0, 3402)
    assert low == 0 and high == pytest.approx(1 - 0.025 ** (1 / 3402), rel=1e-6)  # the exact k = 0 bound
    low, high = clopper_pearson(22, 16638)
    assert low == pytest.approx(0.000829, rel=0.01) and high == pytest.approx(0.002, rel=0.01)
    assert clopper_pearson(5, 5)[1] == 1.0
