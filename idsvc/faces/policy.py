"""What a site asks of faces, and the threshold a door uses: from the pack's calibration and the
number of people a face can be at that door (idsvc.faces.openset), never a constant.

- ``SitePolicy``: the service settings with a site's overrides (``Site.settings["faces"]``).
- ``load_calibration``: the calibration of the configured pack (``IDSVC_FACE_CALIBRATION``, else
  ``calibration.json`` in the installed pack's folder, written by ``idsvc faces calibrate``, else the
  one shipped in ``models/calibration/<pack>.json``). Without one, doors use ``IDSVC_FACE_THRESHOLD``
  and ``face_only`` is refused.
- ``FaceOnlyCheck``: the 409 for a ``face_only`` door the pack cannot serve at the site's targets.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idsvc.config import Settings
from idsvc.core.db import utcnow
from idsvc.core.errors import Conflict
from idsvc.faces.engine import QualityPolicy
from idsvc.faces.openset import Calibration, CalibrationError
from idsvc.registry.models import Door, Grant, Site, Status, door_group_doors
from idsvc.registry.site_settings import SiteFaceSettings

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
SHIPPED_CALIBRATIONS = Path(__file__).resolve().parents[2] / "models" / "calibration"


def site_face_settings(site_settings: dict[str, Any] | None) -> SiteFaceSettings:
    """Parse a site's face overrides; raises pydantic.ValidationError (for the site update path to report)."""
    return SiteFaceSettings.model_validate((site_settings or {}).get("faces") or {})


@dataclass(frozen=True)
class SitePolicy:
    """The service settings with the site's own overrides (SiteFaceSettings)."""

    threshold_floor: float | None  # the site's own threshold: doors never go below it
    liveness_mode: str  # off | advisory | enforce
    target_fpir: float
    min_tpir: float
    quality: QualityPolicy

    @classmethod
    def of(cls, settings: Settings, site: Site) -> SitePolicy:
        try:
            overrides = site_face_settings(site.settings)
        except ValidationError as exc:
            # A bad override must not break the doors: fall back to the service settings, loudly.
            log.error("site %s has invalid face settings, using the defaults: %s", site.id, exc.errors()[0]["msg"])
            overrides = SiteFaceSettings()

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        return cls(
            threshold_floor=overrides.threshold,
            liveness_mode=pick(overrides.liveness_mode, settings.face_liveness_mode),
            target_fpir=pick(overrides.target_fpir, settings.face_target_fpir),
            min_tpir=pick(overrides.min_tpir, settings.face_min_tpir),
            quality=QualityPolicy(
                min_face_px=settings.face_min_size_px,
                min_sharpness=settings.face_min_sharpness,
                liveness_threshold=pick(overrides.liveness_threshold, settings.face_liveness_threshold),
                subject_margin=pick(overrides.subject_margin, settings.face_subject_margin),
            ),
        )


# --- calibration ---------------------------------------------------------------------------------

_loaded: dict[Path, tuple[float, Calibration]] = {}
_loaded_lock = threading.Lock()


def calibration_path(settings: Settings) -> Path | None:
    if settings.face_calibration is not None:
        return settings.face_calibration
    for candidate in (settings.models_dir / settings.face_pack / CALIBRATION_FILE, SHIPPED_CALIBRATIONS / f"{settings.face_pack}.json"):
        if candidate.is_file():
            return candidate
    return None


def load_calibration(settings: Settings) -> Calibration | None:
    """The pack's calibration (re-read when the file changes), or None with an error logged."""
    path = calibration_path(settings)
    if path is None:
        return None
    try:
        stamp = path.stat().st_mtime
        with _loaded_lock:
            cached = _loaded.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        calibration = Calibration.load(path)
    except (OSError, CalibrationError) as exc:
        log.error("face calibration %s unusable, doors fall back to IDSVC_FACE_THRESHOLD: %s", path, exc)
        return None
    if calibration.pack != settings.face_pack:
        log.error("face calibration %s is for pack %s, not %s: not used", path, calibration.pack, settings.face_pack)
        return None
    with _loaded_lock:
        _loaded[path] = (stamp, calibration)
    return calibration


@dataclass(frozen=True)
class DoorThreshold:
    threshold: float
    candidates: int  # N: templates a face is compared with at this door
    source: str  # "calibration" or "fixed" (no calibration: IDSVC_FACE_THRESHOLD)


def door_threshold(settings: Settings, policy: SitePolicy, candidates: int) -> DoorThreshold:
    calibration = load_calibration(settings)
    if calibration is None:
        threshold, source = settings.face_threshold, "fixed"
    else:
        threshold, source = calibration.threshold_for(max(candidates, 1), policy.target_fpir), "calibration"
    if policy.threshold_floor is not None:
        threshold = max(threshold, policy.threshold_floor)
    return DoorThreshold(round(threshold, 4), candidates, source)


# --- the face_only refusal -------------------------------------------------------------------------


def people_granted_at(session: Session, door_id: int, now: datetime) -> int:
    """People with an active grant (now or later) on a group holding the door: who may be enrolled here."""
    return (
        session.scalar(
            select(func.count(func.distinct(Grant.person_id)))
            .join(door_group_doors, door_group_doors.c.door_group_id == Grant.door_group_id)
            .where(door_group_doors.c.door_id == door_id, Grant.person_id.is_not(None), Grant.status == Status.active, Grant.valid_until > now)
        )
        or 0
    )


class FaceOnlyCheck:
    """Refuses face_only (409 ``face_only_unsafe``) where the people who may pass the door outnumber
    what the pack's calibration supports at the site's target stranger rate and minimum tenant rate."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, session: Session, door: Door) -> None:
        site = session.get(Site, door.site_id)
        policy = SitePolicy.of(self.settings, site)  # type: ignore[arg-type]
        people = people_granted_at(session, door.id, utcnow())
        calibration = load_calibration(self.settings)
        alternatives = ["face_and_pass", "face_and_code"]
        targets = {"target_fpir": policy.target_fpir, "min_tpir": policy.min_tpir, "pack": self.settings.face_pack}
        if calibration is None:
            raise Conflict(
                f"face_only needs a calibrated face pack; {self.settings.face_pack} has no calibration (run `idsvc faces calibrate`). "
                "Use face_and_pass or face_and_code.",
                code="face_only_unsafe",
                details={"people_at_door": people, "max_people": 0, "alternatives": alternatives, **targets},
            )
        max_people = calibration.max_gallery(policy.target_fpir, policy.min_tpir)
        if people > max_people:
            threshold = calibration.threshold_for(max(people, 1), policy.target_fpir)
            raise Conflict(
                f"face_only is not safe at this door: {people} people may pass it, and the face pack keeps strangers at "
                f"{policy.target_fpir:.2%} per attempt while letting at least {policy.min_tpir:.0%} of tenants in only up to "
                f"{max_people} people. Use face_and_pass or face_and_code (or a door group with fewer people).",
                code="face_only_unsafe",
                details={
                    "people_at_door": people,
                    "max_people": max_people,
                    "threshold_at_door": threshold,
                    "tpir_at_door": round(calibration.tpir(threshold), 4),
                    "alternatives": alternatives,
                    **targets,
                },
            )
