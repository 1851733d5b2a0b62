"""Fixtures for pass tests: the shared two-site world plus an issued pass for tenant 1."""

from __future__ import annotations

import pytest

from idsvc.auth.principal import OPERATOR
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
