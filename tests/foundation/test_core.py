"""Core pieces on both backends: the key-value store, sealing at rest, migrations matching the models."""

from __future__ import annotations

import base64
import os
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from idsvc.context import AppContext
from idsvc.core.kv import MemoryStore
from idsvc.core.sealing import Sealer, SealingError
from idsvc.db.schema import metadata


def test_add_once_marks_first_use_only(ctx: AppContext) -> None:
    assert ctx.kv.add_once("replay:pass1:step9:door3", 60) is True
    assert ctx.kv.add_once("replay:pass1:step9:door3", 60) is False
    assert ctx.kv.add_once("replay:pass1:step10:door3", 60) is True


def test_exists_sees_live_markers_only(ctx: AppContext) -> None:
    assert ctx.kv.exists("console-signed-out:abc") is False
    assert ctx.kv.add_once("console-signed-out:abc", 1) is True
    assert ctx.kv.exists("console-signed-out:abc") is True and ctx.kv.exists("console-signed-out:abd") is False
    time.sleep(1.1)
    assert ctx.kv.exists("console-signed-out:abc") is False


def test_counters_expire_with_their_window(ctx: AppContext) -> None:
    assert [ctx.kv.incr("window", 1) for _ in range(3)] == [1, 2, 3]
    time.sleep(1.1)
    assert ctx.kv.incr("window", 1) == 1


def test_memory_store_stays_bounded_and_fails_closed_when_full_of_live_keys() -> None:
    store = MemoryStore(max_keys=100)
    accepted = [store.add_once(f"k{n}", 3600) for n in range(150)]
    assert accepted == [True] * 100 + [False] * 50  # refusing is safe; forgetting a marker is a replay
    assert len(store._values) == 100
    assert store.add_once("k0", 3600) is False  # the markers it holds are never dropped early
    assert store.incr("counter", 60) >= 100  # a full store reads as "too many" for rate limits


def test_memory_store_makes_room_from_expired_keys() -> None:
    store = MemoryStore(max_keys=10)
    for n in range(10):
        store.add_once(f"short{n}", 1)
    time.sleep(1.05)
    assert store.add_once("fresh", 60) is True
    assert len(store._values) == 1


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_sealed_values_open_only_for_the_same_record(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sealer = Sealer.from_config(_key(), tmp_path)
    blob = sealer.seal(b"template bytes", aad="template:site1:person7")
    assert b"template bytes" not in blob
    assert sealer.open(blob, aad="template:site1:person7") == b"template bytes"
    with pytest.raises(SealingError, match="another record"):
        sealer.open(blob, aad="template:site1:person8")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SealingError):
        sealer.open(tampered, aad="template:site1:person7")


def test_master_key_rotation_keeps_old_blobs_readable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    old, new = _key(), _key()
    blob = Sealer.from_config(old, tmp_path).seal(b"secret", "k")
    rotated = Sealer.from_config(f"{new},{old}", tmp_path)
    assert rotated.open(blob, "k") == b"secret"
    fresh = rotated.seal(b"secret", "k")
    assert Sealer.from_config(new, tmp_path).open(fresh, "k") == b"secret"
    with pytest.raises(SealingError, match="not configured"):
        Sealer.from_config(new, tmp_path).open(blob, "k")


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_bad_master_keys_are_refused_with_the_fix(tmp_path, bad: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SealingError, match="master"):
        Sealer.from_config(bad, tmp_path)


def test_development_key_is_generated_once_and_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = Sealer.from_config("", tmp_path).seal(b"x", "a")
    assert oct((tmp_path / "master.key").stat().st_mode & 0o777) == "0o600"
    assert Sealer.from_config("", tmp_path).open(first, "a") == b"x"


def test_migrations_match_the_models(database_url: str) -> None:
    """A model change without a migration fails here, on SQLite and on PostgreSQL."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert diff == []
