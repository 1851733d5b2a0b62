"""Open-set thresholds from a calibration file: which cosine threshold keeps the stranger rate at a
door with N enrolled people at or below a target, and how many tenants then still get in.

Pure numpy + json (no service imports) so the door bridge can pick thresholds offline with the same
code. The file format is documented in docs/models.md ("Calibration file"); in short, per group of
people measured:

- ``impostor``: the false accept rate (FAR) of one comparison with another person, as measured points
  ``[threshold, far]`` down to where at least ``MIN_TAIL_PAIRS`` impostor pairs still score above,
  and beyond them an exponential tail ``far(t) = far_u * exp(-(t - u) / beta)`` fitted (maximum
  likelihood) to the impostor scores above ``u``;
- ``genuine``: the true accept rate of one comparison with the same person, ``[threshold, tar]``.

A stranger at a door with N templates is let in when any of the N comparisons passes, so the stranger
rate per attempt is FPIR(t, N) = 1 - (1 - FAR(t))^N (``fpir_factor`` >= 1 widens it when the
calibration's own simulation on disjoint gallery/stranger splits found more than the formula). The
threshold for a target FPIR p at N solves FAR(t) = (1 - (1 - p)^(1/N)) / fpir_factor. Thresholds
come from the governing group (the stricter one: the group whose FAR is higher at the threshold),
so a population the model separates less well sets the bar for everyone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "idsvc-face-calibration/1"
MIN_TAIL_PAIRS = 10  # measured FAR points need at least this many impostor pairs above the threshold
MAX_GALLERY = 1_000_000


class CalibrationError(ValueError):
    """A calibration file is missing, of another format, or inconsistent."""


@dataclass(frozen=True)
class GroupCurves:
    """One group's measured score distributions (see the module docstring)."""

    name: str
    impostor: np.ndarray  # k x 2 [threshold, far], thresholds ascending, far descending
    tail_u: float
    tail_far_u: float
    tail_beta: float
    genuine: np.ndarray  # m x 2 [threshold, tar], thresholds ascending
    summary: dict[str, Any] = field(default_factory=dict)  # counts and the open-set table, for reports

    def far(self, threshold: float) -> float:
        """Measured where measured; above ``u`` the larger of the measured point and the tail (the
        tail alone beyond the last measured point)."""
        thresholds, fars = self.impostor[:, 0], self.impostor[:, 1]
        measured = float(np.interp(threshold, thresholds, fars, left=1.0, right=0.0))
        if threshold <= self.tail_u:
            return measured
        return max(measured, self.tail_far_u * math.exp(-(threshold - self.tail_u) / self.tail_beta))

    def threshold_for_far(self, far: float) -> float:
        """The lowest threshold whose FAR is at most `far` (the inverse of ``far``)."""
        if far <= 0:
            return 1.0
        thresholds, log_fars = self.impostor[:, 0], np.log(np.maximum(self.impostor[:, 1], 1e-300))
        if far >= self.impostor[-1, 1]:
            measured = float(np.interp(math.log(far), log_fars[::-1], thresholds[::-1]))
        else:
            measured = float(thresholds[-1])
        if far >= self.tail_far_u:
            return measured
        return min(max(measured, self.tail_u + self.tail_beta * math.log(self.tail_far_u / far)), 1.0)

    def tar(self, threshold: float) -> float:
        return float(np.interp(threshold, self.genuine[:, 0], self.genuine[:, 1], left=1.0, right=0.0))


@dataclass(frozen=True)
class Calibration:
    pack: str
    embedding: str  # how photos become templates and probes: "plain" or "mirror"
    groups: dict[str, GroupCurves]
    fpir_factor: float = 1.0
    provenance: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def pair_far(n: int, target_fpir: float) -> float:
        """The per-comparison FAR that gives `target_fpir` over n independent comparisons."""
        return -math.expm1(math.log1p(-target_fpir) / max(n, 1))

    def threshold_for(self, n: int, target_fpir: float) -> float:
        """The lowest threshold keeping the stranger rate at n templates <= target in every group."""
        far = self.pair_far(n, target_fpir) / self.fpir_factor
        return round(max(g.threshold_for_far(far) for g in self.groups.values()), 4)

    def governing_group(self, threshold: float) -> str:
        return max(self.groups.values(), key=lambda g: g.far(threshold)).name

    def fpir(self, n: int, threshold: float) -> float:
        far = min(max(g.far(threshold) for g in self.groups.values()) * self.fpir_factor, 1.0)
        return -math.expm1(max(n, 1) * math.log1p(-far)) if far < 1 else 1.0

    def tpir(self, threshold: float) -> float:
        """Enrolled people let in as themselves (at least; a rank-1 miss among many costs a little more):
        the weakest group's genuine accept rate at the threshold."""
        return min(g.tar(threshold) for g in self.groups.values())

    def max_gallery(self, target_fpir: float, min_tpir: float) -> int:
        """The largest N at which the threshold for `target_fpir` still lets `min_tpir` of tenants in
        (0 when not even one template is safe)."""
        if self.tpir(self.threshold_for(1, target_fpir)) < min_tpir:
            return 0
        low, high = 1, MAX_GALLERY
        if self.tpir(self.threshold_for(high, target_fpir)) >= min_tpir:
            return high
        while high - low > 1:  # tpir(threshold_for(n)) falls as n grows
            mid = (low + high) // 2
            if self.tpir(self.threshold_for(mid, target_fpir)) >= min_tpir:
                low = mid
            else:
                high = mid
        return low

    # --- the file -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "pack": self.pack,
            "embedding": self.embedding,
            "fpir_factor": self.fpir_factor,
            "provenance": self.provenance,
            "groups": {
                g.name: {
                    "impostor": [[round(float(t), 5), float(f)] for t, f in g.impostor],
                    "tail": {"u": g.tail_u, "far_u": g.tail_far_u, "beta": g.tail_beta},
                    "genuine": [[round(float(t), 5), round(float(a), 6)] for t, a in g.genuine],
                    **g.summary,
                }
                for g in self.groups.values()
            },
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Calibration:
        if raw.get("format") != FORMAT:
            raise CalibrationError(f"not a face calibration of format {FORMAT!r} (found {raw.get('format')!r})")
        try:
            groups = {}
            for name, g in raw["groups"].items():
                impostor = np.array(g["impostor"], dtype=np.float64).reshape(-1, 2)
                genuine = np.array(g["genuine"], dtype=np.float64).reshape(-1, 2)
                if len(impostor) < 2 or len(genuine) < 2 or np.any(np.diff(impostor[:, 0]) <= 0) or np.any(np.diff(genuine[:, 0]) <= 0):
                    raise CalibrationError(f"group {name!r}: curves need two or more points with rising thresholds")
                if not g["tail"]["beta"] > 0:
                    raise CalibrationError(f"group {name!r}: tail beta must be positive")
                summary = {k: v for k, v in g.items() if k not in ("impostor", "tail", "genuine")}
                groups[name] = GroupCurves(
                    name, impostor, float(g["tail"]["u"]), float(g["tail"]["far_u"]), float(g["tail"]["beta"]), genuine, summary
                )
            if not groups:
                raise CalibrationError("no groups")
            factor = float(raw.get("fpir_factor", 1.0))
            if factor < 1:
                raise CalibrationError("fpir_factor must be >= 1")
            return cls(str(raw["pack"]), str(raw.get("embedding", "plain")), groups, factor, dict(raw.get("provenance", {})))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"malformed calibration: {exc!r}") from exc

    @classmethod
    def load(cls, path: Path) -> Calibration:
        try:
            raw = json.loads(path.read_text())
        except OSError as exc:
            raise CalibrationError(f"cannot read face calibration {path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise CalibrationError(f"{path} is not JSON: {exc}") from exc
        return cls.from_dict(raw)

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")


# --- building curves from scores (used by `idsvc faces calibrate`; numpy only) ----------------------


def group_curves(name: str, genuine: np.ndarray, impostor: np.ndarray, summary: dict[str, Any] | None = None) -> GroupCurves:
    """Measured FAR points, the exponential tail above the FAR-0.1% score (or the top MIN_TAIL_PAIRS*10
    pairs when there are fewer than 10,000), and the genuine accept curve."""
    if len(genuine) < 2 or len(impostor) < 10 * MIN_TAIL_PAIRS:
        raise CalibrationError(f"group {name!r}: too few pairs ({len(genuine)} genuine, {len(impostor)} impostor) to calibrate")
    descending = np.sort(impostor)[::-1]
    count = len(descending)
    # Measured points from FAR 50% down to MIN_TAIL_PAIRS pairs above, on a log grid.
    fars = np.unique(np.geomspace(0.5, MIN_TAIL_PAIRS / count, 60))[::-1]
    thresholds = descending[np.maximum((fars * count).astype(np.int64) - 1, 0)]
    points = sorted({round(float(t), 5): float(np.mean(impostor >= t)) for t in thresholds}.items())
    tail_count = min(max(int(0.001 * count), 10 * MIN_TAIL_PAIRS), count)
    u = float(descending[tail_count - 1])
    beta = max(float(np.mean(descending[:tail_count] - u)), 1e-4)
    grid = np.round(np.arange(-0.2, 1.0001, 0.01), 2)
    genuine_sorted = np.sort(genuine)
    tar = (len(genuine_sorted) - np.searchsorted(genuine_sorted, grid, side="left")) / len(genuine_sorted)
    return GroupCurves(
        name=name,
        impostor=np.array(points, dtype=np.float64),
        tail_u=round(u, 5),
        tail_far_u=tail_count / count,
        tail_beta=round(beta, 6),
        genuine=np.column_stack([grid, tar]),
        summary=dict(summary or {}),
    )
