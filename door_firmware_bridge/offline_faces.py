"""Faces decided at the bridge when the service is away, where the site shares templates with its
bridges (``Site.settings["sync"]["faces"]``) and the person agreed to the offline copy: the service's
own face_only rule, run on the verified feed.

- Only a ``face_only`` door decides a face alone (the door's ``face_mode`` comes in the feed); other
  doors refuse it as the service does: ``face_not_enabled``, ``pass_required``, ``code_required``.
- 1:N among the people who may pass the door now (a grant for it in the feed), with the threshold
  the service would use for that many candidates: the pack's open-set calibration at the site's
  target stranger rate (idsvc.faces.openset.threshold_at), never below the site's floor, or the
  service's fixed threshold without a calibration. Both come signed in the feed's ``face_policy``;
  the calibration file is the pack's own on the bridge host (the same pack as the service, checked).
- As the service: a face more like someone of the site who may not pass here is that person
  (``not_a_candidate``), below the threshold it is ``unknown_face``, never the nearest person
  (idsvc.faces.search, the same search).

The templates arrive sealed (AES-256-GCM under the site's feed key, bound to site, person and pack;
docs/sync.md) and stay sealed on disk (the kept feed documents); they are opened only in memory,
for the feed version in use, with the site key the bridge was given at provisioning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from idsvc.config import Settings
from idsvc.core.errors import ApiError
from idsvc.faces.engine import FaceEngine, QualityPolicy
from idsvc.faces.imaging import decode_image
from idsvc.faces.openset import Calibration, CalibrationError, calibration_path, threshold_at
from idsvc.faces.search import Gallery, build_gallery, search_gallery
from idsvc.sync.verify import FeedState, open_template

MAX_PIXELS = 16_700_000
MODE_REFUSAL = {"off": "face_not_enabled", "face_and_pass": "pass_required", "face_and_code": "code_required"}


@dataclass(frozen=True)
class FaceMatch:
    sub: bytes | None
    score: float | None
    threshold: float | None
    candidates: int
    reasons: list[str]


def load_calibration(settings: Settings) -> Calibration | None:
    """The installed pack's calibration, found where the service finds it (None: fixed threshold)."""
    path = calibration_path(settings.face_calibration, settings.models_dir, settings.face_pack)
    if path is None:
        return None
    try:
        calibration = Calibration.load(Path(path))
    except (OSError, CalibrationError):
        return None
    return calibration if calibration.pack == settings.face_pack else None


class OfflineFaces:
    def __init__(self, engine: FaceEngine, site_key: bytes, calibration: Calibration | None, quality: QualityPolicy | None = None) -> None:
        self.engine = engine
        self.site_key = site_key
        self.calibration = calibration
        self.quality = quality or QualityPolicy()
        self._gallery: tuple[int, list[bytes], Gallery] | None = None  # (feed version, subs, gallery: person id = index in subs)

    def gallery(self, state: FeedState) -> tuple[list[bytes], Gallery]:
        """The site's templates of this engine's pack, opened in memory for this feed version."""
        if self._gallery is None or self._gallery[0] != state.version:
            subs, vectors = [], []
            for sub, templates in state.templates.items():
                for template in templates:
                    if template["pack"] == self.engine.pack and template["dim"] == self.engine.dim:
                        subs.append(sub)
                        vectors.append(np.frombuffer(open_template(self.site_key, state.site, template), dtype="<f4"))
            self._gallery = (state.version, subs, build_gallery(str(state.version), list(range(len(subs))), vectors, self.engine.dim))
        return self._gallery[1], self._gallery[2]

    def threshold(self, state: FeedState, candidates: int) -> float | None:
        """The service's threshold for this many candidates (None: the feed's pack is not this bridge's)."""
        policy = state.face_policy
        if policy.get("pack") != self.engine.pack or not isinstance(policy.get("threshold"), int | float) or not isinstance(policy.get("target_fpir"), int | float):
            return None
        floor = policy.get("threshold_floor")
        return threshold_at(self.calibration, float(policy["threshold"]), float(floor) if isinstance(floor, int | float) else None,
                            float(policy["target_fpir"]), candidates)[0]

    def identify(self, state: FeedState, door_id: int, jpeg: bytes, at: datetime) -> FaceMatch:
        mode = state.face_modes.get(door_id, "off")
        if mode != "face_only":
            return FaceMatch(None, None, None, 0, [MODE_REFUSAL.get(mode, "face_not_enabled")])
        try:
            picture = decode_image(jpeg, MAX_PIXELS)
        except ApiError as exc:  # the service answers these with a 4xx; here they are a refusal with its code
            return FaceMatch(None, None, None, 0, [exc.code])
        extraction = self.engine.extract(picture, self.quality, check_liveness=False)
        if extraction.embedding is None:
            return FaceMatch(None, None, None, 0, extraction.blocking_problems or ["no_face"])
        subs, gallery = self.gallery(state)
        allowed = frozenset(i for i, sub in enumerate(subs) if state.subject_access(sub, door_id, at).allowed)
        search = search_gallery(gallery, extraction.embedding, allowed)
        threshold = self.threshold(state, search.candidates)
        if threshold is None:
            return FaceMatch(None, None, None, search.candidates, ["offline_face_pack_mismatch"])
        if search.best_site is not None and search.best_site[1] >= threshold and search.best_site != search.best_candidate:
            return FaceMatch(subs[search.best_site[0]], round(search.best_site[1], 4), threshold, search.candidates, ["not_a_candidate"])
        if search.best_candidate is None or search.best_candidate[1] < threshold:
            score = None if search.best_candidate is None else round(search.best_candidate[1], 4)
            return FaceMatch(None, score, threshold, search.candidates, ["unknown_face"])
        return FaceMatch(subs[search.best_candidate[0]], round(search.best_candidate[1], 4), threshold, search.candidates, [])
