"""Service configuration, read from environment variables prefixed ``IDSVC_`` (or a ``.env`` file)."""

from __future__ import annotations

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
    log_level: str = "info"
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    auth_failures_per_minute: int = Field(20, ge=1, description="Failed credential attempts per client IP before 429.")

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'idsvc.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
