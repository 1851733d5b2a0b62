"""An on-disk cache of photo embeddings for calibration and benchmarks (never for door decisions).

Embedding the 5,384 calibration photos costs minutes; the statistics over them cost seconds. Entries
are keyed by (pack, pipeline version, variant, sha256 of the photo's bytes), so a renamed photo
still hits and an edited one misses. The cache lives outside the repository
(``~/.cache/idsvc/embeddings`` or ``$IDSVC_EMBEDDING_CACHE``): it holds biometric templates of the
photographed people, so it belongs with the photos, not with the code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

# Bump when detection, alignment or subject choice changes what a photo embeds to.
PIPELINE_VERSION = "2"


def default_root() -> Path:
    configured = os.environ.get("IDSVC_EMBEDDING_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "idsvc" / "embeddings"


def photo_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class EmbeddingCache:
    """Float32 vectors (or small float arrays of quality figures) per (variant, photo digest)."""

    def __init__(self, pack: str, root: Path | None = None) -> None:
        self.folder = (root or default_root()) / f"{pack}-v{PIPELINE_VERSION}"

    def _path(self, variant: str, digest: str) -> Path:
        return self.folder / variant / digest[:2] / f"{digest}.npy"

    def get(self, variant: str, digest: str) -> np.ndarray | None:
        path = self._path(variant, digest)
        try:
            return np.load(path)
        except (OSError, ValueError):
            return None  # absent, or a torn write from an interrupted run: recompute

    def put(self, variant: str, digest: str, vector: np.ndarray) -> None:
        path = self._path(variant, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with partial.open("wb") as handle:
            np.save(handle, np.asarray(vector, dtype=np.float32))
        partial.replace(path)  # atomic: a reader never sees half a vector
