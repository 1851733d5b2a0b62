"""Fixtures of the personal-data tests: the operator CLI pointed at the test database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from idsvc.cli import app
from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.faces.engine import get_engine
from idsvc.faces.packs import PackError
from tests.prerequisites import missing
from tests.world import World


@pytest.fixture
def cli_env(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSVC_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("IDSVC_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("IDSVC_REDIS_URL", ctx.settings.redis_url)
    monkeypatch.setenv("IDSVC_REDIS_PREFIX", ctx.settings.redis_prefix)
    monkeypatch.setenv("IDSVC_MASTER_KEY", ctx.settings.master_key)


class Cli:
    """``idsvc ...`` in process, as the operator types it."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def run(self, *args: str, answer: str | None = None) -> tuple[int, str]:
        result = self.runner.invoke(app, list(args), input=answer)
        return result.exit_code, result.output

    def json(self, *args: str) -> Any:
        result = self.runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)  # progress goes to stderr


@pytest.fixture
def cli(cli_env: None) -> Cli:
    return Cli()


@pytest.fixture(scope="session")
def photo(shared_dir: Path) -> Callable[[str], bytes]:
    """A labelled photo of ../shared/data/faces; skips without the photos or the face model pack."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    try:
        get_engine(settings.models_dir, settings.face_pack, settings.face_onnx_threads)
    except PackError as exc:
        missing(f"face model pack absent ({exc}); run `idsvc models install` first")
    folder = shared_dir / "data" / "faces"
    if not (folder / "identities.csv").is_file():
        missing(f"labelled face photos not found in {folder}")
    return lambda name: (folder / name).read_bytes()


def consent_body(**extra: Any) -> dict[str, Any]:
    return {"method": "signed form", "text_version": "2026-11", "language": "zh-CN", **extra}


def enrol(client: TestClient, world: World, person_id: int, image: bytes, who: str = "admin_a") -> Any:
    return client.put(f"/v1/people/{person_id}/face", files=[("images", ("face.jpg", image, "image/jpeg"))], headers=world.auth(who))
