"""Per-site in-memory galleries of decrypted templates for 1:N search.

Search is exact brute force: one float32 matrix-vector product. Measured here (bench/faces_gallery.py)
it answers 100k templates well inside the 20 ms aim; ANN indexes were not adopted because exact
search has no recall loss, and at 1M (~2 GB per million, beyond one site's size) the filing duty
for 100k+ faces applies first.

Each node keeps the galleries it has served; a template write changes the site's version token in
the same transaction, and the next search on any node sees the new token and reloads.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.core.sealing import Sealer
from idsvc.faces.models import FaceGalleryVersion, FaceTemplate


def template_aad(site_id: int, person_id: int, pack: str) -> str:
    return f"face-template:v1:site={site_id}:person={person_id}:pack={pack}"


def seal_embedding(sealer: Sealer, vector: np.ndarray, site_id: int, person_id: int, pack: str) -> bytes:
    return sealer.seal(vector.astype("<f4").tobytes(), template_aad(site_id, person_id, pack))


def open_embedding(sealer: Sealer, template: FaceTemplate) -> np.ndarray:
    raw = sealer.open(template.sealed, template_aad(template.site_id, template.person_id, template.pack))
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def resealed(sealer: Sealer, template: FaceTemplate) -> dict[str, bytes]:
    """The template re-sealed under the current master key (master-key rotation); same embedding."""
    return {"sealed": seal_embedding(sealer, open_embedding(sealer, template), template.site_id, template.person_id, template.pack)}


def bump_version(session: Session, site_id: int) -> None:
    """Call in the transaction that changes a site's templates."""
    row = session.get(FaceGalleryVersion, site_id)
    token = secrets.token_hex(16)
    if row is None:
        session.add(FaceGalleryVersion(site_id=site_id, token=token))
    else:
        row.token = token


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


class GalleryCache:
    def __init__(self) -> None:
        self._galleries: dict[tuple[str, int, str], Gallery] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, sealer: Sealer, database: str, site_id: int, pack: str, dim: int) -> Gallery:
        version = session.get(FaceGalleryVersion, site_id)
        token = version.token if version is not None else ""
        key = (database, site_id, pack)
        cached = self._galleries.get(key)
        if cached is not None and cached.token == token:
            return cached
        with self._lock:  # one loader per node; others wait rather than all decrypting the same rows
            cached = self._galleries.get(key)
            if cached is not None and cached.token == token:
                return cached
            rows = session.scalars(
                select(FaceTemplate).where(FaceTemplate.site_id == site_id, FaceTemplate.pack == pack).order_by(FaceTemplate.person_id)
            ).all()
            gallery = build_gallery(token, [r.person_id for r in rows], [open_embedding(sealer, r) for r in rows], dim)
            self._galleries[key] = gallery
            return gallery


GALLERIES = GalleryCache()
