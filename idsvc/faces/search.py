"""1:N search over a gallery of templates: one float32 matrix-vector product (pure numpy).

Kept apart from gallery.py (which loads and caches the service's sealed templates) so that the site
bridge decides offline faces with the very same search, over the templates of its signed feed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gallery:
    token: str
    person_ids: np.ndarray  # int64, row i of matrix belongs to person_ids[i]
    matrix: np.ndarray  # n x dim float32, rows L2-normalised

    def __len__(self) -> int:
        return len(self.person_ids)

    def best(self, probe: np.ndarray) -> tuple[int, float] | None:
        """The most similar enrolled person and the cosine; None for an empty gallery."""
        return search_gallery(self, probe, None).best_site

    def search(self, probe: np.ndarray, candidates: frozenset[int] | None) -> Search:
        return search_gallery(self, probe, candidates)


@dataclass(frozen=True)
class Search:
    best_candidate: tuple[int, float] | None  # among the people who may pass the door
    best_site: tuple[int, float] | None  # over the whole site
    candidates: int  # templates compared as candidates (N)


def _best(person_ids: np.ndarray, scores: np.ndarray) -> tuple[int, float] | None:
    if not len(scores):
        return None
    i = int(np.argmax(scores))
    return int(person_ids[i]), float(scores[i])


def search_gallery(gallery: Gallery, probe: np.ndarray, candidates: frozenset[int] | None) -> Search:
    """One matrix-vector product over the site; the best among `candidates` (None = everyone) and overall."""
    scores = gallery.matrix @ probe if len(gallery) else np.zeros(0, dtype=np.float32)
    best_site = _best(gallery.person_ids, scores)
    if candidates is None:
        return Search(best_site, best_site, len(gallery))
    mask = np.isin(gallery.person_ids, np.fromiter(candidates, dtype=np.int64, count=len(candidates)))
    return Search(_best(gallery.person_ids[mask], scores[mask]), best_site, int(mask.sum()))


def build_gallery(token: str, person_ids: list[int], vectors: list[np.ndarray], dim: int) -> Gallery:
    matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), dtype=np.float32)
    return Gallery(token=token, person_ids=np.array(person_ids, dtype=np.int64), matrix=np.ascontiguousarray(matrix))


