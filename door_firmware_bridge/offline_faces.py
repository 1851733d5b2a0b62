"""Faces decided at the bridge when the service is away, where the site shares templates with its
bridges (``Site.settings["sync"]["faces"]``): 1:N among the site's templates in the verified feed,
then the same grant check as a pass.

The templates arrive sealed (AES-256-GCM under the site's feed key, bound to site, person and pack;
docs/sync.md) and stay sealed on disk (the kept feed documents); they are opened only in memory,
for the feed version in use, with the site key the bridge was given at provisioning
(``offline.site_key_file``). Like the service, the best match over the whole site wins: a face more
like an ungranted person than like a granted one is that person, and is refused; below the
threshold it is ``unknown_face``, never the nearest person. A template withdrawn (consent, tenancy
ended) leaves the bridge with the next feed.

The threshold comes from a :class:`ThresholdPolicy`: today the site's threshold from the feed (or
the service's default, 0.40, the same default as ``IDSVC_FACE_THRESHOLD``); the open-set
calibration of issue 9 (a threshold for a target stranger rate at gallery size N) plugs in here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from idsvc.core.errors import ApiError
from idsvc.faces.engine import FaceEngine, QualityPolicy
from idsvc.faces.imaging import decode_image
from idsvc.sync.verify import FeedState, open_template

DEFAULT_THRESHOLD = 0.40
MAX_PIXELS = 16_700_000
UNKNOWN_FACE = "unknown_face"


class ThresholdPolicy(Protocol):
    def threshold(self, state: FeedState, gallery_size: int) -> float:
        """The cosine similarity a match needs, for this site's feed and this many templates."""


@dataclass(frozen=True)
class SiteThreshold:
    """The site's own threshold as the feed carries it (``face_policy.threshold``), else a default."""

    default: float = DEFAULT_THRESHOLD

    def threshold(self, state: FeedState, gallery_size: int) -> float:
        value = state.face_policy.get("threshold")
        return float(value) if isinstance(value, int | float) else self.default


@dataclass(frozen=True)
class FaceMatch:
    sub: bytes | None
    score: float | None
    threshold: float | None
    reasons: list[str]


class OfflineFaces:
    def __init__(self, engine: FaceEngine, site_key: bytes, thresholds: ThresholdPolicy, quality: QualityPolicy | None = None) -> None:
        self.engine = engine
        self.site_key = site_key
        self.thresholds = thresholds
        self.quality = quality or QualityPolicy()
        self._gallery: tuple[int, list[bytes], np.ndarray] | None = None  # (feed version, subs, matrix)

    def gallery(self, state: FeedState) -> tuple[list[bytes], np.ndarray]:
        """The site's templates of this engine's pack, opened in memory for this feed version."""
        if self._gallery is None or self._gallery[0] != state.version:
            subs, rows = [], []
            for sub, templates in state.templates.items():
                for template in templates:
                    if template["pack"] != self.engine.pack or template["dim"] != self.engine.dim:
                        continue
                    subs.append(sub)
                    rows.append(np.frombuffer(open_template(self.site_key, state.site, template), dtype="<f4"))
            matrix = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, self.engine.dim), np.float32)
            self._gallery = (state.version, subs, matrix)
        return self._gallery[1], self._gallery[2]

    def identify(self, state: FeedState, jpeg: bytes) -> FaceMatch:
        try:
            picture = decode_image(jpeg, MAX_PIXELS)
        except ApiError as exc:  # the service answers these with a 4xx; here they are a refusal with its code
            return FaceMatch(None, None, None, [exc.code])
        extraction = self.engine.extract(picture, self.quality, check_liveness=False)
        if extraction.embedding is None:
            return FaceMatch(None, None, None, extraction.blocking_problems or ["no_face"])
        subs, matrix = self.gallery(state)
        threshold = self.thresholds.threshold(state, len(subs))
        if not subs:
            return FaceMatch(None, None, threshold, [UNKNOWN_FACE])
        scores = matrix @ extraction.embedding
        best = int(np.argmax(scores))
        score = round(float(scores[best]), 4)
        if score < threshold:
            return FaceMatch(None, score, threshold, [UNKNOWN_FACE])
        return FaceMatch(subs[best], score, threshold, [])
