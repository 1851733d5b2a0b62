"""Per-site in-memory galleries of decrypted templates for 1:N search.

Search is exact brute force: one float32 matrix-vector product. Measured here (bench/faces_gallery.py)
it answers 100k templates well inside the 20 ms aim; ANN indexes were not adopted because exact
search has no recall loss, and at 1M (~2 GB per million, beyond one site's size) the filing duty
for 100k+ faces applies first.

Each node keeps the galleries it has served; a template write changes the site's version token in
the same transaction, and the next search on any node sees the new token and reloads.
"""

from __future__ import annotations

import logging
import secrets
import threading

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.core.bus import Bus
from idsvc.core.sealing import Sealer, SealingError
from idsvc.faces.models import FaceGalleryVersion, FaceTemplate
from idsvc.faces.search import Gallery, Search, build_gallery, search_gallery

__all__ = ["Gallery", "Search", "build_gallery", "search_gallery"]  # kept importable here; defined in search.py

log = logging.getLogger(__name__)


def template_aad(site_id: int, person_id: int, pack: str) -> str:
    return f"face-template:v1:site={site_id}:person={person_id}:pack={pack}"


def seal_embedding(sealer: Sealer, vector: np.ndarray, site_id: int, person_id: int, pack: str) -> bytes:
    return sealer.seal(vector.astype("<f4").tobytes(), template_aad(site_id, person_id, pack))


def open_embedding(sealer: Sealer, template: FaceTemplate) -> np.ndarray:
    raw = sealer.open(template.sealed, template_aad(template.site_id, template.person_id, template.pack))
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


# The notice of a template that cannot be opened; the alarm core (above faces) raises its alarm.
UNREADABLE_NOTICE = "face_template_unreadable"


def readable_embedding(sealer: Sealer, bus: Bus, template: FaceTemplate, dim: int) -> np.ndarray | None:
    """The template's embedding, or None (and a notice on the bus) when it cannot be opened or has
    the wrong size: a wrong master key or an edited row must cost that one person their face
    match, not every face verify at the site."""
    try:
        vector = open_embedding(sealer, template)
    except SealingError as exc:
        problem = str(exc)
    else:
        if vector.shape == (dim,):
            return vector
        problem = f"{vector.shape[0]} values where the pack has {dim}"
    log.error("face template of person %s (site %s) skipped: %s", template.person_id, template.site_id, problem)
    bus.publish({"kind": UNREADABLE_NOTICE, "site_id": template.site_id, "person_id": template.person_id, "pack": template.pack, "problem": problem})
    return None


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


class GalleryCache:
    def __init__(self) -> None:
        self._galleries: dict[tuple[str, int, str], Gallery] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, sealer: Sealer, bus: Bus, database: str, site_id: int, pack: str, dim: int) -> Gallery:
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
            opened = [(r.person_id, readable_embedding(sealer, bus, r, dim)) for r in rows]
            usable = [(person, vector) for person, vector in opened if vector is not None]
            gallery = build_gallery(token, [p for p, _ in usable], [v for _, v in usable], dim)
            self._galleries[key] = gallery
            return gallery


GALLERIES = GalleryCache()
