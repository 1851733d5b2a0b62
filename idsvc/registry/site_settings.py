"""What a site may set in ``Site.settings``. Checked when a site is created or changed, so a typo is
a 422 for the administrator rather than an override silently ignored at the door."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SiteFaceSettings(BaseModel):
    """Overrides of the service's face settings for one site; unset = the service setting."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(None, ge=-1.0, le=1.0, description="a floor: doors never use a lower threshold than this")
    liveness_mode: Literal["off", "advisory", "enforce"] | None = None
    liveness_threshold: float | None = Field(None, ge=0.0, le=1.0)
    target_fpir: float | None = Field(None, gt=0.0, lt=1.0, description="strangers let in per attempt, e.g. 0.001")
    min_tpir: float | None = Field(None, gt=0.0, le=1.0, description="tenants a face_only door must let in, e.g. 0.95")
    subject_margin: float | None = Field(None, ge=1.05, le=10.0, description="how much larger the subject's face must be than the next")


class SiteSyncSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    faces: bool = Field(False, description="Put the encrypted face templates of granted people in the bridges' feed.")


class SiteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    faces: SiteFaceSettings = Field(default_factory=SiteFaceSettings)
    sync: SiteSyncSettings = Field(default_factory=SiteSyncSettings)


def check(settings: dict[str, Any]) -> dict[str, Any]:
    """Validate (raises ValueError naming the field) and return the settings unchanged."""
    SiteSettings.model_validate(settings)
    return settings
