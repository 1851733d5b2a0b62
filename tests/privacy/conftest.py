"""Fixtures of the personal-data tests: the operator CLI pointed at the test database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from idsvc.cli import app
from idsvc.context import AppContext


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

    def run(self, *args: str) -> tuple[int, str]:
        result = self.runner.invoke(app, list(args))
        return result.exit_code, result.output

    def json(self, *args: str) -> Any:
        code, output = self.run(*args)
        assert code == 0, output
        return json.loads(output)


@pytest.fixture
def cli(cli_env: None) -> Cli:
    return Cli()
