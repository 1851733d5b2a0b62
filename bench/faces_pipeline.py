"""Per-stage latency and accuracy of the face engine, against the dlib pipeline face_recognition users run.

    .venv/bin/pip install -e '.[bench]'     # dlib-bin + face_recognition_models (for the baseline)
    .venv/bin/python bench/faces_pipeline.py [--photos DIR] [--repeat 3]

Single thread for both (onnxruntime intra_op_num_threads=1; dlib is single-threaded on CPU). Medians
per photo over the shared labelled set. The dlib baseline makes the calls face_recognition makes:
HOG detector with one upsample, the 5-point shape predictor, the ResNet descriptor (1 jitter); scored
by negative Euclidean distance (its verdict threshold is distance 0.6).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from idsvc.config import Settings
from idsvc.faces.engine import FaceEngine, align, get_engine
from idsvc.faces.evaluate import pair_scores, read_identities, summarise
from idsvc.faces.gallery import build_gallery
from idsvc.faces.imaging import decode_image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = Path(os.environ.get("IDSVC_SHARED_DIR", REPO.parent / "shared")) / "data" / "faces"


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best_of = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best_of.append(time.perf_counter() - start)
    return statistics.median(best_of), result


def bench_engine(photos: Path, labels: list[tuple[str, str]], repeat: int) -> dict[str, object]:
    settings = Settings()
    engine = get_engine(settings.models_dir, settings.face_pack, 1)
    stages: dict[str, list[float]] = {k: [] for k in ("decode", "detect", "landmarks", "align", "embed", "liveness", "match_1k", "end_to_end")}
    # match: 1:N against a 1,000-template gallery (synthetic unit vectors; bench/faces_gallery.py scales it)
    rng = np.random.default_rng(3)
    synthetic = rng.standard_normal((1000, engine.dim), dtype=np.float32)
    gallery = build_gallery("bench", list(range(1000)), list(synthetic / np.linalg.norm(synthetic, axis=1, keepdims=True)), engine.dim)
    vectors, names = [], []
    detector = engine.detector
    for name, identity in labels:
        data = (photos / name).read_bytes()
        t, image = timed(lambda: decode_image(data, settings.face_max_pixels), repeat)
        stages["decode"].append(t)
        # detect = the box model alone; landmarks = the 68-point model on the best box
        t, _ = timed(lambda: detector._detect.run(None, {"input": _detect_blob(image)}), repeat)  # noqa: SLF001
        stages["detect"].append(t)
        faces = engine.detect(image)
        face = faces[0]
        t, _ = timed(lambda: detector.landmarks(image, face.box), repeat)
        stages["landmarks"].append(t)
        t, (crop, _) = timed(lambda: align(image, face.landmarks), repeat)
        stages["align"].append(t)
        t, vector = timed(lambda: engine.recognizer.embed(crop), repeat)
        stages["embed"].append(t)
        t, _ = timed(lambda: engine.liveness.score(image, face), repeat)
        stages["liveness"].append(t)
        t, _ = timed(lambda: gallery.best(vector), repeat)
        stages["match_1k"].append(t)
        t, _ = timed(lambda: _identify(engine, data, settings.face_max_pixels), repeat)
        stages["end_to_end"].append(t)
        vectors.append(vector)
        names.append(identity)
    scores = pair_scores(vectors, names)
    return {
        "pack": engine.pack,
        "stage_median_ms": {k: median_ms(v) for k, v in stages.items()},
        "accuracy": summarise(scores, settings.face_threshold),
        # Before dlib loads: the whole process so far (Python, numpy, onnxruntime sessions, photos).
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _identify(engine: FaceEngine, data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes to embedding, without liveness: the work dlib's pipeline does too."""
    image = decode_image(data, max_pixels)
    return engine.embed(image, engine.detect(image)[0])


def _detect_blob(image: np.ndarray) -> np.ndarray:
    import cv2

    return ((cv2.resize(image, (320, 240)).astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]


def bench_dlib(photos: Path, labels: list[tuple[str, str]], repeat: int, max_side: int | None) -> dict[str, object]:
    import dlib
    import face_recognition_models as frm

    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    stages: dict[str, list[float]] = {k: [] for k in ("decode", "detect", "landmarks", "embed", "end_to_end")}
    vectors, names, missed = [], [], 0

    def load(data: bytes) -> np.ndarray:  # as face_recognition.load_image_file, plus an optional downscale
        image = Image.open(io.BytesIO(data)).convert("RGB")
        if max_side and max(image.size) > max_side:
            image.thumbnail((max_side, max_side))
        return np.asarray(image)

    for name, identity in labels:
        data = (photos / name).read_bytes()
        t, image = timed(lambda: load(data), repeat)
        stages["decode"].append(t)
        t, boxes = timed(lambda: detector(image, 1), repeat)
        stages["detect"].append(t)
        if not boxes:
            missed += 1
            continue
        box = max(boxes, key=lambda b: b.area())
        t, shape = timed(lambda: shapes(image, box), repeat)
        stages["landmarks"].append(t)
        t, descriptor = timed(lambda: np.array(encoder.compute_face_descriptor(image, shape, 1)), repeat)
        stages["embed"].append(t)
        stages["end_to_end"].append(sum(stages[k][-1] for k in ("decode", "detect", "landmarks", "embed")))
        vectors.append(descriptor)
        names.append(identity)

    def negative_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return -np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)

    scores = pair_scores(vectors, names, negative_distance)
    return {
        "config": f"HOG upsample 1, {'max side ' + str(max_side) if max_side else 'full resolution'}",
        "faces_found": f"{len(vectors)}/{len(labels)}",
        "stage_median_ms": {k: median_ms(v) for k, v in stages.items()},
        "accuracy": summarise(scores, -0.6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (args.photos / "identities.csv").is_file():
        raise SystemExit(f"no labelled photos at {args.photos}; pass --photos or set IDSVC_SHARED_DIR")
    labels = read_identities(args.photos / "identities.csv")
    results: dict[str, object] = {"photos": len(labels), "engine": bench_engine(args.photos, labels, args.repeat)}
    try:
        results["dlib_full"] = bench_dlib(args.photos, labels, args.repeat, None)
        results["dlib_640"] = bench_dlib(args.photos, labels, args.repeat, 640)
    except ImportError:
        results["dlib"] = "not installed: pip install -e '.[bench]'"
    else:
        ours = results["engine"]["stage_median_ms"]["end_to_end"]  # type: ignore[index]
        for key in ("dlib_full", "dlib_640"):
            theirs = results[key]["stage_median_ms"]["end_to_end"]  # type: ignore[index]
            results[f"speedup_vs_{key}"] = round(theirs / ours, 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
