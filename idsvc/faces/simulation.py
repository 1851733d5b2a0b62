"""Open-set identification measured by simulation, and exact binomial confidence intervals.

A door with N enrolled people is simulated on labelled embeddings: N people drawn at random are
enrolled (their templates), the other people of the set are strangers (disjoint), and every photo
not used for enrolment walks up to the door. A stranger whose best score reaches the threshold is a
false positive identification (FPIR); an enrolled person whose best match is themselves at or above
the threshold is a true positive identification (TPIR). Repeated over random splits. numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# scores(probe embeddings, template matrix) -> probes x templates; see plain_scores.
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def plain_scores(probes: np.ndarray, templates: np.ndarray) -> np.ndarray:
    return probes @ templates.T


@dataclass
class OpenSetCounts:
    n: int
    threshold: float
    stranger_attempts: int
    strangers_accepted: int
    mated_attempts: int
    mated_accepted: int  # best match is the right person, at or above the threshold
    misidentified: int  # a mated probe accepted as someone else

    @property
    def fpir(self) -> float:
        return self.strangers_accepted / self.stranger_attempts if self.stranger_attempts else float("nan")

    @property
    def tpir(self) -> float:
        return self.mated_accepted / self.mated_attempts if self.mated_attempts else float("nan")

    def fpir_ci(self) -> tuple[float, float]:
        return clopper_pearson(self.strangers_accepted, self.stranger_attempts)

    def tpir_ci(self) -> tuple[float, float]:
        return clopper_pearson(self.mated_accepted, self.mated_attempts)


def simulate_door(
    photos: np.ndarray,
    identities: np.ndarray,
    n: int,
    threshold_for: Callable[[int], float],
    *,
    repeats: int,
    enrol_photos: int = 1,
    per_photo_templates: bool = False,
    scorer: Scorer = plain_scores,
    max_probes_per_person: int | None = None,
    seed: int = 0,
) -> OpenSetCounts:
    """Counts over `repeats` random disjoint gallery/stranger splits of the people in `identities`.

    `photos` are L2-normalised embeddings (one row per photo). Each enrolled person gets a template
    from up to `enrol_photos` of their photos (always leaving one to probe with, if they have two):
    the normalised mean, or with `per_photo_templates` one template per photo (then the door holds
    more templates than people and the threshold is the one for that many templates).
    `max_probes_per_person` caps each person's probes per split (mated and stranger alike), so a
    person with 60 photos does not outweigh 60 people with one.
    """
    rng = np.random.default_rng(seed)
    people, person_of = np.unique(identities, return_inverse=True)
    rows_of = [np.flatnonzero(person_of == p) for p in range(len(people))]
    if n >= len(people):
        raise ValueError(f"a gallery of {n} leaves no strangers among {len(people)} people")
    counts = OpenSetCounts(n, float("nan"), 0, 0, 0, 0, 0)
    for _ in range(repeats):
        order = rng.permutation(len(people))
        gallery, strangers = order[:n], order[n:]
        template_rows, owners, mated_rows, mated_owner = [], [], [], []
        for slot, person in enumerate(gallery):
            rows = rng.permutation(rows_of[person])
            k = min(enrol_photos, max(len(rows) - 1, 1))
            enrolled, rest = rows[:k], rows[k:][:max_probes_per_person]
            if per_photo_templates:
                template_rows.extend(photos[r] for r in enrolled)
                owners.extend([slot] * len(enrolled))
            else:
                mean = photos[enrolled].mean(axis=0)
                template_rows.append(mean / np.linalg.norm(mean))
                owners.append(slot)
            mated_rows.extend(rest)
            mated_owner.extend([slot] * len(rest))
        templates = np.stack(template_rows)
        owner = np.array(owners)
        threshold = threshold_for(len(templates))  # the door's threshold follows its template count
        counts.threshold = threshold
        stranger_rows = np.concatenate([rng.permutation(rows_of[p])[:max_probes_per_person] for p in strangers])
        stranger_best = scorer(photos[stranger_rows], templates).max(axis=1)
        counts.stranger_attempts += len(stranger_rows)
        counts.strangers_accepted += int((stranger_best >= threshold).sum())
        if mated_rows:
            scores = scorer(photos[np.array(mated_rows)], templates)
            best = scores.argmax(axis=1)
            accepted = scores[np.arange(len(best)), best] >= threshold
            right = owner[best] == np.array(mated_owner)
            counts.mated_attempts += len(mated_rows)
            counts.mated_accepted += int((accepted & right).sum())
            counts.misidentified += int((accepted & ~right).sum())
    return counts


# --- exact binomial intervals (no scipy) ------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Numerical Recipes 6.4)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c if abs(c) > tiny else 1 + aa / tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c if abs(c) > tiny else 1 + aa / tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-12:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def _beta_quantile(q: float, a: float, b: float) -> float:
    low, high = 0.0, 1.0
    for _ in range(100):
        mid = (low + high) / 2
        if betainc(a, b, mid) < q:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (conservative) two-sided interval for a binomial rate k/n."""
    if n <= 0:
        return (0.0, 1.0)
    alpha = 1 - confidence
    low = 0.0 if k == 0 else _beta_quantile(alpha / 2, k, n - k + 1)
    high = 1.0 if k == n else _beta_quantile(1 - alpha / 2, k + 1, n - k)
    return (low, high)
