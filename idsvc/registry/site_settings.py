"""What a site may set in ``Site.settings``. Checked when a site is created or changed, so a typo is
a 422 for the administrator rather than an override silently ignored at the door."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class SiteFaceSettings(BaseModel):
    """Overrides of the service's face settings for one site; unset = the service setting."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(None, ge=-1.0, le=1.0, description="calibrated with `idsvc faces evaluate`")
    liveness_mode: Literal["off", "advisory", "enforce"] | None = None
    liveness_threshold: float | None = Field(None, ge=0.0, le=1.0)


class SiteSyncSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    faces: bool = Field(False, description="Put the encrypted face templates of granted people in the bridges' feed.")


class ThresholdOverride(BaseModel):
    """A sensor threshold; unset fields keep the alarm core's default (docs/sensors.md)."""

    model_config = ConfigDict(extra="forbid")

    limit: float | None = Field(None, gt=0, le=1_000_000, description="alarm at or above this value")
    hold_s: float | None = Field(None, ge=0, le=86_400, description="the value must stay at or above the limit this long")
    repeats: int | None = Field(None, ge=1, le=100, description="... and be reported this many times in a row")


class EmissionLimitOverride(BaseModel):
    """Limits of one HJ 212 pollutant code, in the unit the station reports (docs/sensors.md)."""

    model_config = ConfigDict(extra="forbid")

    hour: float | None = Field(None, gt=0, description="1-hour mean (CN 2061 Avg) limit")
    day: float | None = Field(None, gt=0, description="24-hour mean (CN 2031 Avg) limit")


class SiteAlarmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    residual_current_ma: ThresholdOverride = Field(default_factory=ThresholdOverride)
    line_temperature_c: ThresholdOverride = Field(default_factory=ThresholdOverride)
    gas_value: ThresholdOverride = Field(default_factory=ThresholdOverride)
    emission_limits: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][0-9a-z]{5}$")], EmissionLimitOverride] = Field(
        default_factory=dict, description="per HJ 212 pollutant code, e.g. a21026; merged over GB 3095-2012 Grade II"
    )


class SiteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    faces: SiteFaceSettings = Field(default_factory=SiteFaceSettings)
    sync: SiteSyncSettings = Field(default_factory=SiteSyncSettings)
    alarms: SiteAlarmSettings = Field(default_factory=SiteAlarmSettings)


def check(settings: dict[str, Any]) -> dict[str, Any]:
    """Validate (raises ValueError naming the field) and return the settings unchanged."""
    SiteSettings.model_validate(settings)
    return settings
