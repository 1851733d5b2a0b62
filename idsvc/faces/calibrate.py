"""Embedding a labelled photo folder for calibration: one face per photo, cached on disk.

Shared by `idsvc faces calibrate`, `idsvc faces evaluate` and bench/faces_openset.py. Each photo
yields the raw recognizer output of the aligned face and of its mirror image (so every embedding
variant can be formed without running the model again) and the face's quality figures. The face
taken is the one nearest the centre of the photo, as labelled sets put their subject there.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from idsvc.core.errors import ApiError
from idsvc.faces.embed_cache import EmbeddingCache, photo_digest
from idsvc.faces.engine import Face, FaceEngine, align, sharpness
from idsvc.faces.imaging import decode_image
from idsvc.faces.openset import Calibration, GroupCurves, group_curves
from idsvc.faces.simulation import simulate_door

# Quality columns, in this order, of LabelledEmbeddings.quality.
QUALITY_FIELDS = ("detector_score", "face_px", "sharpness", "landmark_error", "raw_norm")


@dataclass(frozen=True)
class LabelledPhoto:
    file: str
    identity: str
    group: str


@dataclass
class LabelledEmbeddings:
    """Row i of every array belongs to photos[i]; photos without a usable face are in failures."""

    photos: list[LabelledPhoto]
    raw: np.ndarray  # n x dim, the recognizer's output for the aligned face
    raw_mirror: np.ndarray | None  # n x dim, for the mirrored aligned face (when asked for)
    quality: np.ndarray  # n x len(QUALITY_FIELDS)
    failures: list[dict[str, str]]

    @property
    def identities(self) -> np.ndarray:
        return np.array([p.identity for p in self.photos])

    @property
    def groups(self) -> np.ndarray:
        return np.array([p.group for p in self.photos])


def read_labelled(path: Path) -> list[LabelledPhoto]:
    """`file,identity[,group]` rows (a missing group column puts everyone in group `all`)."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"file", "identity"} <= set(reader.fieldnames):
            raise ValueError(f"{path} needs a header with the columns file,identity (and optionally group)")
        rows = [LabelledPhoto(r["file"].strip(), r["identity"].strip(), (r.get("group") or "all").strip() or "all") for r in reader]
    if not rows:
        raise ValueError(f"{path} has no rows")
    return rows


def read_exclusions(path: Path) -> dict[str, str]:
    """Photos to leave out (wrong labels in the set itself): one relative path per line, then
    optionally `# why`; blank lines and lines starting with # are skipped."""
    excluded = {}
    for line in path.read_text().splitlines():
        name, _, why = line.partition("#")
        if name.strip():
            excluded[name.strip()] = why.strip()
    return excluded


def central_face(faces: list[Face], width: int, height: int) -> Face:
    centre = np.array([width / 2, height / 2])
    return min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))


def embed_labelled(
    engine: FaceEngine,
    folder: Path,
    photos: list[LabelledPhoto],
    max_pixels: int,
    cache: EmbeddingCache | None = None,
    progress: Callable[[], None] | None = None,
    *,
    mirror: bool = False,
) -> LabelledEmbeddings:
    kept: list[LabelledPhoto] = []
    raws, mirrors, qualities, failures = [], [], [], []
    for photo in photos:
        try:
            row = _embed_one(engine, (folder / photo.file).read_bytes(), max_pixels, cache, mirror)
        except ApiError as exc:
            row = exc.code
        except OSError as exc:
            row = f"unreadable: {exc.strerror or exc}"
        if isinstance(row, str):
            failures.append({"file": photo.file, "error": row})
        else:
            kept.append(photo)
            raws.append(row[0])
            mirrors.append(row[1])
            qualities.append(row[2])
        if progress:
            progress()
    dim = engine.dim
    return LabelledEmbeddings(
        photos=kept,
        raw=np.array(raws, dtype=np.float32).reshape(-1, dim),
        raw_mirror=np.array(mirrors, dtype=np.float32).reshape(-1, dim) if mirror else None,
        quality=np.array(qualities, dtype=np.float32).reshape(-1, len(QUALITY_FIELDS)),
        failures=failures,
    )


def _embed_one(
    engine: FaceEngine, data: bytes, max_pixels: int, cache: EmbeddingCache | None, mirror: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray] | str:
    digest = photo_digest(data)
    if cache is not None:
        found = [cache.get(variant, digest) for variant in ("raw", "raw_mirror" if mirror else "raw", "quality")]
        if all(v is not None for v in found):
            return found[0], (found[1] if mirror else None), found[2]  # type: ignore[return-value]
        if cache.get("no_face", digest) is not None:
            return "no_face"
    image = decode_image(data, max_pixels)
    faces = engine.detect(image)
    if not faces:
        if cache is not None:
            cache.put("no_face", digest, np.zeros(1))
        return "no_face"
    face = central_face(faces, image.shape[1], image.shape[0])
    aligned, error = align(image, face.landmarks)
    raw = engine.recognizer.raw(aligned)
    raw_mirror = engine.recognizer.raw(aligned[:, ::-1]) if mirror else None
    quality = np.array([face.score, face.size, sharpness(aligned), error, float(np.linalg.norm(raw))], dtype=np.float32)
    if cache is not None:
        cache.put("raw", digest, raw)
        cache.put("quality", digest, quality)
        if raw_mirror is not None:
            cache.put("raw_mirror", digest, raw_mirror)
    return raw, raw_mirror, quality


# --- from embeddings to a calibration file ---------------------------------------------------------

CALIBRATION_SIZES = (1, 10, 100, 1000, 10_000)
MAX_PROBES_PER_PERSON = 3  # per split: a person with 60 photos must not outweigh 60 people


def _pairs(vectors: np.ndarray, identities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    upper = np.triu_indices(len(identities), 1)
    same = (identities[:, None] == identities[None, :])[upper]
    scores = (vectors @ vectors.T)[upper]
    return scores[same], scores[~same]


def build_calibration(
    data: LabelledEmbeddings, pack: str, provenance: dict[str, Any], *, target_fpir: float = 0.001, repeats: int = 100
) -> Calibration:
    """Per group: pair score curves, then the open-set table measured on disjoint splits where the
    group has enough people (else the formula's prediction, marked so). ``fpir_factor`` is raised
    above 1 when a simulated stranger rate's lower 95% bound exceeds the formula's prediction."""
    vectors = data.raw / np.linalg.norm(data.raw, axis=1, keepdims=True)
    groups: dict[str, GroupCurves] = {}
    for group in sorted(set(data.groups.tolist())):
        rows = data.groups == group
        genuine, impostor = _pairs(vectors[rows], data.identities[rows])
        people = len(set(data.identities[rows].tolist()))
        groups[group] = group_curves(
            group, genuine, impostor,
            {"people": people, "photos": int(rows.sum()), "genuine_pairs": len(genuine), "impostor_pairs": len(impostor)},
        )
    calibration = Calibration(pack, "plain", groups, 1.0, provenance)
    factor = 1.0
    for group, curves in groups.items():
        rows = data.groups == group
        table = []
        for n in CALIBRATION_SIZES:
            threshold = calibration.threshold_for(n, target_fpir)
            entry: dict[str, Any] = {"n": n, "target_fpir": target_fpir, "threshold": threshold, "predicted_tpir": round(calibration.tpir(threshold), 4)}
            if n < curves.summary["people"]:
                counts = simulate_door(
                    vectors[rows], data.identities[rows], n, lambda templates: calibration.threshold_for(templates, target_fpir),
                    repeats=max(repeats // (10 if n >= 1000 else 1), 5), max_probes_per_person=MAX_PROBES_PER_PERSON, seed=n,
                )
                low, high = counts.fpir_ci()
                entry |= {
                    "method": "simulated",
                    "splits": max(repeats // (10 if n >= 1000 else 1), 5),
                    "stranger_attempts": counts.stranger_attempts,
                    "fpir": round(counts.fpir, 6),
                    "fpir_ci95": [round(low, 6), round(high, 6)],
                    "tpir": round(counts.tpir, 4) if counts.mated_attempts else None,
                    "tpir_ci95": [round(v, 4) for v in counts.tpir_ci()] if counts.mated_attempts else None,
                }
                predicted = calibration.fpir(n, threshold)
                if predicted > 0 and low > predicted:
                    factor = max(factor, low / predicted)
            else:
                entry |= {"method": "formula", "fpir": round(calibration.fpir(n, threshold), 6)}
            table.append(entry)
        curves.summary["openset"] = table
    provenance = provenance | {"target_fpir": target_fpir, "fpir_factor_from": "lower 95% bound of simulated FPIR over the formula's prediction"}
    return Calibration(pack, "plain", groups, round(factor, 3), provenance)
