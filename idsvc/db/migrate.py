"""Run Alembic from code, so operators never need an alembic.ini of their own."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from idsvc.core.sealing import Sealer

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str, sealer: Sealer | None = None) -> Config:
    config = Config()
    # Migrations that seal existing personal data use it (else they build one from the settings).
    config.attributes["sealer"] = sealer
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser treats % as interpolation; URLs may contain it (escaped passwords).
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads", sealer: Sealer | None = None) -> None:
    command.upgrade(alembic_config(database_url, sealer), revision)


def release_heads() -> set[str]:
    """The newest revision of each domain's branch in this release (what `upgrade` brings a database to)."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current_heads(database_url: str) -> set[str]:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
