"""Fixtures of the reliability tests: the app on a context whose PostgreSQL and Redis are reached through fault proxies."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from idsvc.app import create_app
from idsvc.context import AppContext
from tests.netfaults import FaultProxy, fault_proxy
from tests.world import World

DB_TIMEOUT_S = 1.0
REDIS_TIMEOUT_S = 0.5


@dataclasses.dataclass
class Faulty:
    client: TestClient
    ctx: AppContext
    db: FaultProxy
    redis: FaultProxy


@pytest.fixture
def faulty(ctx: AppContext, world: World) -> Iterator[Faulty]:
    """The app on its own context whose PostgreSQL and Redis connections go through fault proxies."""
    settings = ctx.settings
    if ctx.db.is_sqlite or not settings.redis_url:
        pytest.skip("needs PostgreSQL and Redis (IDSVC_TEST_DATABASE_URL, IDSVC_TEST_REDIS_URL): faults are injected on their network path")
    db_url, redis_url = make_url(settings.effective_database_url), make_url(settings.redis_url.replace("redis://", "postgresql://", 1))
    with fault_proxy(db_url.host or "127.0.0.1", db_url.port or 5432) as db, fault_proxy(redis_url.host or "127.0.0.1", redis_url.port or 6379) as redis:
        proxied = settings.model_copy(
            update={
                "database_url": db_url.set(host="127.0.0.1", port=db.port).render_as_string(hide_password=False),
                "redis_url": f"redis://127.0.0.1:{redis.port}/{redis_url.database or 0}",
                "db_timeout_s": DB_TIMEOUT_S,
                "redis_timeout_s": REDIS_TIMEOUT_S,
            }
        )
        node = AppContext.from_settings(proxied)
        try:
            with TestClient(create_app(node), raise_server_exceptions=False) as client:
                yield Faulty(client, node, db, redis)
        finally:
            db.heal()
            redis.heal()
            node.close()
