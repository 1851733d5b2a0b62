"""Service configuration, read from environment variables prefixed ``IDSVC_`` (or a ``.env`` file)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IDSVC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where embedded state lives (SQLite file, generated keys).")
    database_url: str = Field("", description="SQLAlchemy URL; empty = SQLite file in data_dir.")
    redis_url: str = Field("", description="redis://host:port/db; empty = in-process caches (single node only).")
    redis_prefix: str = Field("idsvc:", description="Prefix of every Redis key, so several deployments can share one Redis.")
    master_key: str = Field(
        "",
        description="Base64 32-byte key that encrypts issuer keys and face templates at rest. "
        "Empty = generate one into data_dir/master.key on first start (single-node development only).",
    )
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    log_level: str = Field("info", pattern="^(critical|error|warning|info|debug)$", description="Log level of idsvc and uvicorn.")
    log_format: str = Field("text", pattern="^(text|json)$", description="text, or json: one JSON object per line (time, level, logger, message).")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    auth_failures_per_minute: int = Field(20, ge=1, description="Failed credential attempts per client IP before 429.")
    # Faces (issue 4). Per-site overrides live in Site.settings["faces"] (threshold, liveness_mode).
    models_dir: Path = Field(
        default_factory=lambda: _user_data_dir() / "models",
        description="Where face model packs are installed (`idsvc models install`); outside the repo so clones share it.",
    )
    face_pack: str = Field("faceplugin-mfn-0.0.1", description="Installed model pack the engine loads (see `idsvc models list`).")
    face_threshold: float = Field(
        0.40, ge=-1.0, le=1.0, description="Cosine threshold used only when the pack has no calibration; with one, doors take the calibrated threshold for their N."
    )
    face_target_fpir: float = Field(0.001, gt=0.0, lt=1.0, description="Stranger let in per face attempt a door's threshold is chosen for (0.001 = 0.1%).")
    face_min_tpir: float = Field(0.95, gt=0.0, le=1.0, description="Tenants let in as themselves a face_only door must keep at its threshold, else configuring it is refused.")
    face_subject_margin: float = Field(
        1.3, ge=1.05, le=10.0, description="In a frame with several faces, the largest must be this many times the next one's side (and the most central) to be verified."
    )
    face_calibration: Path | None = Field(None, description="Calibration file to use instead of the installed pack's (see `idsvc faces calibrate`).")
    face_onnx_threads: int = Field(1, ge=1, le=64, description="onnxruntime intra-op threads per session (1 is fastest on 2 cores).")
    face_liveness_mode: str = Field(
        "advisory", pattern="^(off|advisory|enforce)$", description="advisory = report spoof_suspected but do not deny (unvalidated model)."
    )
    face_liveness_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Liveness score below which a face is spoof_suspected.")
    face_min_size_px: int = Field(64, ge=16, description="Smallest accepted face box side, in pixels of the decoded image.")
    face_min_sharpness: float = Field(50.0, ge=0.0, description="Smallest Laplacian variance of the 112x112 aligned face (blur gate).")
    face_max_pixels: int = Field(40_000_000, ge=10_000, description="Largest decoded image (width x height); bigger is refused as a decompression bomb.")
    face_template_grace_days: int = Field(
        7, ge=0, le=30, description="Days after a person's last grant ended before the template purge deletes their template (site override: retention.face_template_days)."
    )
    # Filing (docs/privacy.md): the 2025 face-recognition measures require filing at 100,000 people.
    face_filing_warning_at: int = Field(90_000, ge=1, description="Enrolled people (all sites) from which the filing status says 'warning' and enrolment logs a warning.")
    face_filing_ceiling: int = Field(
        100_000, ge=1, description="Enrolled people (all sites) past which new enrolments are refused until an operator confirms the filing (`idsvc faces filing confirm`)."
    )
    # Retention (docs/privacy.md); each site may override within the same bounds (site settings "retention").
    retention_contact_days: int = Field(
        180, ge=0, le=1095, description="Days after a person's last tenancy ended before their phone and registration fields are deleted."
    )
    retention_decision_days: int = Field(
        180, ge=30, le=1095, description="Days after which door decisions and device events are pseudonymised (the person replaced by a pseudonym)."
    )

    # Scheduled jobs inside `idsvc serve` (docs/operations.md): one node runs each job.
    scheduler_enabled: bool = Field(True, description="Run the periodic jobs (template purge, feed pruning, journal compaction, retention, emission pruning) inside the service.")
    scheduler_tick_seconds: float = Field(30.0, gt=0, le=3600, description="How often each node looks for a job that is due.")
    sync_keep_days: int = Field(30, ge=1, le=3650, description="Days of the sync change log kept by the feed pruning job; bridges further behind get a snapshot.")

    # Alarms (issue 14).
    alarm_sweep_s: float = Field(2.0, gt=0, le=60, description="How often held conditions and silent sensors are checked.")
    hj212_host: str = Field("127.0.0.1", description="Where the HJ 212-2017 station server listens (0.0.0.0 for stations on other hosts).")
    hj212_port: int = Field(0, ge=0, le=65535, description="Port of the HJ 212-2017 station server; 0 = not started.")
    emission_keep_days: int = Field(
        1827, ge=1827, le=7300, description="Days minute, hour and day emission records are kept (at least five years: pollutant discharge permit regulations, art. 21)."
    )
    emission_real_time_keep_days: int = Field(
        1827, ge=30, le=7300, description="Days real-time (CN 2011) emission records are kept; lower only where the authority accepts the aggregates as the record."
    )

    @field_validator("data_dir", "models_dir", "face_calibration")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'idsvc.db').resolve()}"


def _user_data_dir() -> Path:
    """XDG data home (~/.local/share/idsvc): survives re-clones, so reinstalling a pack is a no-op."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "idsvc"


@lru_cache
def get_settings() -> Settings:
    return Settings()
