"""Calibrating the threshold on a site's own labelled photos: pair scores, ROC, EER, a suggested threshold.

Every photo yields its best-scoring face (no quality gate: the point is to see how the model ranks
the photos an operator actually has); every pair of photos is a genuine pair (same identity) or an
impostor pair.
"""

from __future__ import annotations

import csv
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from idsvc.core.errors import ApiError
from idsvc.faces.engine import FaceEngine
from idsvc.faces.imaging import decode_image

TARGET_FARS = (0.01, 0.001)


@dataclass
class PairScores:
    genuine: np.ndarray
    impostor: np.ndarray


def read_identities(path: Path) -> list[tuple[str, str]]:
    """(file, identity) rows; ValueError naming the problem for anything but a CSV with those columns."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [(row["file"].strip(), row["identity"].strip()) for row in csv.DictReader(handle)]
    except (KeyError, AttributeError, UnicodeDecodeError, csv.Error):
        raise ValueError(f"{path} is not a UTF-8 CSV with the columns file,identity") from None
    if not rows:
        raise ValueError(f"{path} has no rows (expected a header 'file,identity')")
    return rows


def embed_folder(
    engine: FaceEngine, folder: Path, labels: list[tuple[str, str]], max_pixels: int, progress: Callable[[], None] | None = None
) -> tuple[list[np.ndarray], list[str], list[dict[str, str]]]:
    """Embeddings and identities of photos where a face was found, plus one error row per failed file."""
    embeddings, identities, failures = [], [], []
    for name, identity in labels:
        try:
            image = decode_image((folder / name).read_bytes(), max_pixels)
            faces = engine.detect(image)
            if not faces:
                failures.append({"file": name, "error": "no_face"})
            else:
                embeddings.append(engine.embed(image, faces[0]))
                identities.append(identity)
        except ApiError as exc:
            failures.append({"file": name, "error": exc.code})
        except OSError as exc:
            failures.append({"file": name, "error": f"unreadable: {exc.strerror or exc}"})
        if progress:
            progress()
    return embeddings, identities, failures


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b.T  # rows are L2-normalised


def pair_scores(
    embeddings: list[np.ndarray], identities: list[str], similarity_of: Callable[[np.ndarray, np.ndarray], np.ndarray] = cosine_matrix
) -> PairScores:
    """Every unordered pair's score (higher = more alike), split into genuine and impostor pairs."""
    matrix = np.stack(embeddings)
    similarity = similarity_of(matrix, matrix)
    upper = np.triu_indices(len(identities), 1)
    labels = np.array(identities)
    same = (labels[:, None] == labels[None, :])[upper]
    scores = similarity[upper]
    return PairScores(genuine=scores[same], impostor=scores[~same])


def roc(scores: PairScores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (every distinct score, descending) with FAR and TAR when accepting score >= threshold."""
    thresholds = np.unique(np.concatenate([scores.genuine, scores.impostor]))[::-1]
    impostor = np.sort(scores.impostor)
    genuine = np.sort(scores.genuine)
    far = (len(impostor) - np.searchsorted(impostor, thresholds, side="left")) / max(len(impostor), 1)
    tar = (len(genuine) - np.searchsorted(genuine, thresholds, side="left")) / max(len(genuine), 1)
    return thresholds, far, tar


def summarise(scores: PairScores, threshold: float) -> dict[str, Any]:
    thresholds, far, tar = roc(scores)
    result: dict[str, Any] = {"genuine_pairs": int(len(scores.genuine)), "impostor_pairs": int(len(scores.impostor))}
    for target in TARGET_FARS:
        ok = far <= target
        result[f"tar_at_far_{target:g}"] = round(float(tar[ok].max()), 4) if ok.any() else 0.0
    frr = 1 - tar
    i = int(np.argmin(np.abs(far - frr)))
    result["eer"] = round(float((far[i] + frr[i]) / 2), 4)
    result["eer_threshold"] = round(float(thresholds[i]), 4)
    result["threshold"] = threshold
    result["false_accepts"] = int((scores.impostor >= threshold).sum())
    result["false_rejects"] = int((scores.genuine < threshold).sum())
    # Halfway between the last score that breaks FAR <= 0.1% and the first that keeps it. With few
    # impostor pairs that means "just above the hardest impostor": re-run on more photos before trusting it.
    strict = np.flatnonzero(far <= 0.001)
    if len(strict) == 0:
        result["suggested_threshold"] = None
    else:
        last = strict.max()
        above = float(thresholds[last])
        below = float(thresholds[last + 1]) if last + 1 < len(thresholds) else above
        result["suggested_threshold"] = round((above + below) / 2, 3)
    result["genuine_mean"] = round(float(scores.genuine.mean()), 4) if len(scores.genuine) else None
    result["impostor_max"] = round(float(scores.impostor.max()), 4) if len(scores.impostor) else None
    return result


def write_report(scores: PairScores, summary: dict[str, Any], folder: Path) -> list[Path]:
    """ROC and histogram PNGs plus an HTML page tying them to the figures."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    _, far, tar = roc(scores)
    floor = 1 / max(len(scores.impostor), 1) / 2  # FAR 0 cannot sit on a log axis; draw it at half a pair

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(np.maximum(far, floor), tar, drawstyle="steps-post")
    for target in TARGET_FARS:
        ax.axvline(target, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate (impostor pairs accepted)")
    ax.set_ylabel("true accept rate (genuine pairs accepted)")
    ax.set_title(f"ROC: {summary['genuine_pairs']} genuine / {summary['impostor_pairs']} impostor pairs")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    roc_path = folder / "roc.png"
    fig.savefig(roc_path, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    bins = np.linspace(-0.3, 1.0, 53)
    ax.hist(scores.impostor, bins=bins, alpha=0.6, density=True, label="impostor pairs")
    ax.hist(scores.genuine, bins=bins, alpha=0.6, density=True, label="genuine pairs")
    ax.axvline(summary["threshold"], color="red", linestyle="--", label=f"threshold {summary['threshold']}")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    hist_path = folder / "histogram.png"
    fig.savefig(hist_path, dpi=110)
    plt.close(fig)

    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items())
    page = folder / "index.html"
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>Face threshold calibration</title>"
        "<h1>Face threshold calibration</h1><table>" + rows + "</table>"
        '<p><img src="roc.png" alt="ROC curve"> <img src="histogram.png" alt="score histogram"></p>'
    )
    return [roc_path, hist_path, page]
