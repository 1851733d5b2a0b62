"""Fixtures for pass tests: the shared two-site world plus an issued pass for tenant 1."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from idsvc.auth.principal import OPERATOR
from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.passes import issuing
from idsvc.passes.verify import PassVerifier
from tests.world import World


@pytest.fixture
def verifier(ctx: AppContext) -> PassVerifier:
    return PassVerifier(ctx, refresh_seconds=0)


@pytest.fixture
def tenant_pass(ctx: AppContext, world: World) -> issuing.IssuedPass:
    with ctx.db.session() as s:
        return issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])


@pytest.fixture
def other_node(ctx: AppContext) -> Iterator[AppContext]:
    """A second service node on the same database that hears no notices: its own in-process bus and
    store (no Redis), so it can learn of a change only by reading the database."""
    settings = Settings(
        database_url=ctx.settings.effective_database_url,
        redis_url="",
        redis_prefix=f"idsvc-test-node2-{secrets.token_hex(4)}:",
        data_dir=ctx.settings.data_dir,
        master_key=ctx.settings.master_key,
        scheduler_enabled=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    node = AppContext.from_settings(settings)
    try:
        yield node
    finally:
        node.close()
