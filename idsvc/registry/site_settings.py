"""What a site may set in ``Site.settings``. Checked when a site is created or changed, so a typo is
a 422 for the administrator rather than an override silently ignored at the door."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from idsvc.config import Settings

log = logging.getLogger(__name__)


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


RegistrationField = Literal["sex", "birth_date", "household_province", "household_address", "occupation", "workplace"]


class SiteRegistrationSettings(BaseModel):
    """The optional tenant-registration fields this site collects (none unless turned on)."""

    model_config = ConfigDict(extra="forbid")

    fields: list[RegistrationField] = Field(default_factory=list, description="collected, sealed, and required for a complete registration")
    deadline_days: int = Field(3, ge=0, le=30, description="days after a tenancy starts before an incomplete registration is overdue")


# Bounds of every retention period, in days (docs/privacy.md says why each is what it is).
FACE_TEMPLATE_DAYS = (0, 30)
CONTACT_DAYS = (0, 1095)
DECISION_DAYS = (30, 1095)


class SiteRetentionSettings(BaseModel):
    """How long personal data stays after it stops being needed; unset = the service setting."""

    model_config = ConfigDict(extra="forbid")

    face_template_days: int | None = Field(None, ge=FACE_TEMPLATE_DAYS[0], le=FACE_TEMPLATE_DAYS[1], description="after the person's last grant ends")
    contact_days: int | None = Field(None, ge=CONTACT_DAYS[0], le=CONTACT_DAYS[1], description="phone and registration fields, after the last tenancy ends")
    decision_days: int | None = Field(None, ge=DECISION_DAYS[0], le=DECISION_DAYS[1], description="door decisions and device events, then pseudonymised")


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
    registration: SiteRegistrationSettings = Field(default_factory=SiteRegistrationSettings)
    retention: SiteRetentionSettings = Field(default_factory=SiteRetentionSettings)
    alarms: SiteAlarmSettings = Field(default_factory=SiteAlarmSettings)


def parse(settings: dict[str, Any] | None) -> SiteSettings:
    """A site's settings as checked values; a stored value that no longer validates falls back to the
    defaults, loudly (it was checked when written: only a hand edit of the database gets here)."""
    try:
        return SiteSettings.model_validate(settings or {})
    except ValueError as exc:
        log.error("site settings do not validate, using the defaults: %s", exc)
        return SiteSettings()


@dataclass(frozen=True)
class RetentionPeriods:
    face_template: timedelta
    contact: timedelta
    decision: timedelta


def retention_periods(service: Settings, site_settings: dict[str, Any] | None) -> RetentionPeriods:
    """A site's retention periods: its own settings, else the service's."""
    own = parse(site_settings).retention

    def days(value: int | None, default: int) -> timedelta:
        return timedelta(days=default if value is None else value)

    return RetentionPeriods(
        face_template=days(own.face_template_days, service.face_template_grace_days),
        contact=days(own.contact_days, service.retention_contact_days),
        decision=days(own.decision_days, service.retention_decision_days),
    )


def check(settings: dict[str, Any]) -> dict[str, Any]:
    """Validate (raises ValueError naming the field) and return the settings unchanged."""
    SiteSettings.model_validate(settings)
    return settings
