"""Test fixtures shared by every test module.

The backend follows the environment, so the same suite runs on embedded defaults and on the real
servers: with ``IDSVC_TEST_DATABASE_URL`` pointing at PostgreSQL, a throw-away database is created for
the run; with ``IDSVC_TEST_REDIS_URL``, the key-value store is Redis under a per-run key prefix.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.core.kv import RedisStore
from idsvc.db.schema import metadata
from tests.databases import lost_sqlite_lock, scratch_database
from tests.prerequisites import missing

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.world import World

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_path() -> Path:
    return Path(os.environ.get("IDSVC_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (or $IDSVC_SHARED_DIR): photos and certificate vectors that are not ours to copy."""
    path = shared_path()
    if not path.is_dir():
        missing(f"shared test data not found at {path}; set IDSVC_SHARED_DIR to run this test")
    return path


BACKEND_FILE_ENV = "IDSVC_TEST_BACKEND_FILE"  # .ci/run reads the backend this run reached from it
_reached: dict[str, str] = {"database": "none", "store": "none"}


def pytest_configure(config: pytest.Config) -> None:
    """A backend URL this suite does not recognise stops the run: a typo must not become a green SQLite run."""
    database = os.environ.get("IDSVC_TEST_DATABASE_URL", "")
    if database and not database.startswith("postgresql"):
        raise pytest.UsageError(f"IDSVC_TEST_DATABASE_URL={database!r} is not a PostgreSQL URL (postgresql+psycopg://user@host:port/db); "
                                "unset it to run on SQLite")
    store = os.environ.get("IDSVC_TEST_REDIS_URL", "")
    if store and not store.startswith(("redis://", "rediss://", "unix://")):
        raise pytest.UsageError(f"IDSVC_TEST_REDIS_URL={store!r} is not a Redis URL (redis://host:port/db); unset it for the in-process store")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    line = f"database={_reached['database']} store={_reached['store']}"
    terminalreporter.write_line(f"idsvc test backend: {line}")
    if path := os.environ.get(BACKEND_FILE_ENV):
        Path(path).write_text(line + "\n")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # A database of our own for this run (and worker), dropped at the end.
    with scratch_database(os.environ.get("IDSVC_TEST_DATABASE_URL", ""), tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("IDSVC_TEST_REDIS_URL", "")


@pytest.fixture(scope="session")
def session_ctx(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=f"idsvc-test-{secrets.token_hex(4)}:",
        data_dir=tmp_path_factory.mktemp("data"),
        master_key="",
        # Periodic jobs run when a test asks (tests/privacy/test_scheduler.py), not behind other tests' backs.
        scheduler_enabled=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    ctx = AppContext.from_settings(settings)
    with ctx.db.engine.connect() as connection:  # what this run really reached, not what it was asked for
        connection.execute(text("SELECT 1"))
        _reached["database"] = connection.dialect.name
    _reached["store"] = "redis" if isinstance(ctx.kv, RedisStore) and ctx.kv.client.ping() else "memory"
    yield ctx
    ctx.kv.clear()
    ctx.close()


def _reset(ctx: AppContext) -> None:
    with ctx.db.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            if table.name == "audit_head":
                connection.execute(text("UPDATE audit_head SET seq = 0, hash = :h"), {"h": "0" * 64})
            else:
                connection.execute(table.delete())
    ctx.kv.clear()
    ctx.principals.clear()
    ctx.access.forget()


@pytest.fixture
def ctx(session_ctx: AppContext) -> Iterator[AppContext]:
    """A context with an empty database and store (tables are emptied before each test)."""
    _reset(session_ctx)
    yield session_ctx
    if lost := lost_sqlite_lock(session_ctx.db):
        session_ctx.db.engine.dispose()  # new connections take the lock again: later tests are not hit
        pytest.fail(lost)


@pytest.fixture
def uses_redis(ctx: AppContext) -> bool:
    return isinstance(ctx.kv, RedisStore)


@pytest.fixture
def client(ctx: AppContext) -> Iterator[TestClient]:
    from fastapi.testclient import TestClient

    from idsvc.app import create_app

    with TestClient(create_app(ctx)) as test_client:
        yield test_client


@pytest.fixture
def world(ctx: AppContext) -> World:
    from tests.world import build_world

    return build_world(ctx)
