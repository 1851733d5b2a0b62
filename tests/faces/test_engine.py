"""The engine on real photos: alignment maths, the quality gate's reasons, and accuracy on the shared set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from idsvc.faces.engine import ARCFACE_TEMPLATE, Face, FaceEngine, QualityPolicy, Reason, align, decode_scrfd, select_subject, umeyama
from idsvc.faces.evaluate import PairScores, embed_folder, pair_scores, read_identities, summarise
from idsvc.faces.imaging import decode_image

MAX_PIXELS = 40_000_000


def load(photo, name: str) -> np.ndarray:  # noqa: ANN001
    return decode_image(photo(name), MAX_PIXELS)


def test_umeyama_recovers_a_similarity_transform() -> None:
    angle, scale, shift = np.deg2rad(17), 2.5, np.array([40.0, -12.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = (ARCFACE_TEMPLATE - shift) @ np.linalg.inv(rotation).T  # points that map exactly onto the template
    matrix = umeyama(source, ARCFACE_TEMPLATE)
    assert np.allclose(matrix[:, :2], rotation, atol=1e-4)
    assert np.allclose(source @ matrix[:, :2].T + matrix[:, 2], ARCFACE_TEMPLATE, atol=1e-3)


def test_alignment_puts_the_landmarks_on_the_template(photo, engine: FaceEngine) -> None:  # noqa: ANN001
    image = load(photo, "img1.jpg")
    face = engine.detect(image)[0]
    crop, error = align(image, face.landmarks)
    assert crop.shape == (112, 112, 3)
    assert error < 0.05
    eyes = face.landmarks[:2]
    assert eyes[0, 0] < eyes[1, 0]  # left eye (image left) first


def test_quality_gate_reasons(photo, engine: FaceEngine) -> None:  # noqa: ANN001
    policy = QualityPolicy()
    good = engine.extract(load(photo, "img1.jpg"), policy)
    assert good.problems == [] and good.embedding is not None
    assert abs(float(np.linalg.norm(good.embedding)) - 1) < 1e-5
    assert good.liveness is not None and good.liveness > 0.9

    assert engine.extract(np.full((480, 640, 3), 128, np.uint8), policy).problems == [Reason.NO_FACE]
    assert engine.extract(load(photo, "couple.jpg"), policy).problems == [Reason.MULTIPLE_FACES]
    small = cv2.resize(load(photo, "img1.jpg"), (75, 100))
    assert engine.extract(small, policy).problems == [Reason.FACE_TOO_SMALL]
    blurred = cv2.GaussianBlur(load(photo, "img1.jpg"), (61, 61), 0)
    assert engine.extract(blurred, policy).problems == [Reason.LOW_QUALITY]
    assert engine.extract(load(photo, "img1.jpg"), QualityPolicy(liveness_threshold=1.0)).problems == [Reason.SPOOF_SUSPECTED]
    # implausible landmarks: the misfit to the template is gated too (here with an absurdly strict limit)
    strict = engine.extract(load(photo, "img1.jpg"), QualityPolicy(max_landmark_error=0.001))
    assert strict.problems == [Reason.LOW_QUALITY] and strict.landmark_error is not None and strict.landmark_error > 0.001


def test_a_clear_subject_is_verified_in_a_crowded_frame(photo, engine: FaceEngine) -> None:  # noqa: ANN001
    # img54 has a second, smaller face behind the subject (119 px against 358 px, off centre).
    image = load(photo, "img54.jpg")
    crowded = engine.extract(image, QualityPolicy(min_face_px=64))
    assert crowded.problems == [] and crowded.other_faces == 1 and crowded.face is not None and crowded.face.size > 300
    assert crowded.quality()["other_faces"] == 1
    # ... unless the site asks for a larger margin than 358/119 = 3.0
    assert engine.extract(image, QualityPolicy(min_face_px=64, subject_margin=3.5)).problems == [Reason.MULTIPLE_FACES]
    # faces below the size floor do not count at all
    alone = engine.extract(image, QualityPolicy(min_face_px=150))
    assert alone.problems == [] and alone.other_faces == 0
    # two faces of about one size (388 and 376 px): nobody is clearly the subject
    assert engine.extract(load(photo, "couple.jpg"), QualityPolicy()).problems == [Reason.MULTIPLE_FACES]


def test_the_subject_must_be_largest_by_the_margin_and_most_central() -> None:
    def face(cx: float, cy: float, side: float) -> Face:
        return Face(box=np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32), score=1.0, landmarks=np.zeros((5, 2), np.float32))

    front, behind = face(320, 240, 200), face(500, 200, 100)
    assert select_subject([behind, front], 640, 480, 1.3) is front
    assert select_subject([behind, front], 640, 480, 2.5) is None  # 200/100 = 2.0 is not enough
    # a big face at the edge of the frame, with a smaller one in the middle: ambiguous, not the big one
    assert select_subject([face(600, 240, 200), face(320, 240, 120)], 640, 480, 1.3) is None


def test_accuracy_on_the_shared_photos(faces_dir: Path, engine: FaceEngine) -> None:
    labels = read_identities(faces_dir / "identities.csv")
    embeddings, identities, failures = embed_folder(engine, faces_dir, labels, MAX_PIXELS)
    assert failures == [] and len(embeddings) == len(labels) == 40
    summary = summarise(pair_scores(embeddings, identities), threshold=0.40)
    assert summary["genuine_pairs"] == 90 and summary["impostor_pairs"] == 690
    assert summary["tar_at_far_0.001"] >= 0.95
    assert summary["false_accepts"] == 0
    assert 0.2 < summary["suggested_threshold"] < 0.6


def test_metrics_on_known_scores() -> None:
    scores = PairScores(genuine=np.array([0.9, 0.8, 0.5, 0.3]), impostor=np.array([0.1, 0.2, 0.35, 0.0] * 250))
    summary = summarise(scores, threshold=0.4)
    assert summary["false_accepts"] == 0 and summary["false_rejects"] == 1
    assert summary["tar_at_far_0.01"] == 0.75  # 0.3 is below 250 impostors at 0.35
    assert summary["suggested_threshold"] == pytest.approx(0.425)


def test_scrfd_decoding_places_box_and_points() -> None:
    # One confident anchor at stride 8, cell (x=10, y=5), anchor 0: centre (80, 40).
    outputs = []
    for stride in (8, 16, 32):
        cells = (640 // stride) ** 2 * 2
        outputs.append(np.zeros((cells, 1), np.float32))
    for stride in (8, 16, 32):
        outputs.append(np.ones(((640 // stride) ** 2 * 2, 4), np.float32))
    for stride in (8, 16, 32):
        outputs.append(np.zeros(((640 // stride) ** 2 * 2, 10), np.float32))
    index = (5 * 80 + 10) * 2
    outputs[0][index] = 0.9
    outputs[3][index] = [2, 3, 4, 5]  # distances left, top, right, bottom in stride units
    outputs[6][index] = np.arange(10) / 10
    boxes, scores, points = decode_scrfd(outputs, 640, 0.5)
    assert scores.tolist() == pytest.approx([0.9])
    assert boxes[0].tolist() == pytest.approx([80 - 16, 40 - 24, 80 + 32, 40 + 40])
    assert points[0, 0].tolist() == pytest.approx([80 + 0.0, 40 + 0.8])
