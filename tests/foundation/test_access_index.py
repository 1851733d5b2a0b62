"""The in-process access index answers exactly as the database check does, and follows every change."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from idsvc.audit.service import NewEvent
from idsvc.context import AppContext
from idsvc.core.db import Database, utcnow
from idsvc.registry.access import AccessResult, check_access
from idsvc.registry.index import record_decision
from idsvc.registry.models import Door, Grant, Person, Status
from tests.world import World


def _both(ctx: AppContext, door_id: int, person_id: int, at=None) -> tuple[tuple[bool, tuple[str, ...]], tuple[bool, tuple[str, ...]]]:  # type: ignore[no-untyped-def]
    at = at or utcnow()
    with ctx.db.session() as s:
        db = check_access(s, door_id, at, person_id=person_id)
    mem = ctx.access.check(door_id, at, person_id=person_id)
    return (db.allowed, db.reasons), (mem.allowed, mem.reasons)


def test_index_agrees_with_the_database_everywhere(ctx: AppContext, world: World) -> None:
    doors = [world.ids[k] for k in ("door1", "door2", "entrance_a", "entrance_b")] + [999_999]
    people = [world.ids[k] for k in ("tenant1", "tenant2", "owner1")] + [999_999]
    times = [utcnow(), utcnow() + timedelta(days=60), utcnow() - timedelta(days=5)]
    for door_id, person_id, at in itertools.product(doors, people, times):
        db, mem = _both(ctx, door_id, person_id, at)
        assert db == mem, (door_id, person_id, at)
    assert _both(ctx, world.ids["door1"], world.ids["tenant1"])[1] == (True, ())


def test_index_follows_changes_made_through_the_api_at_once(ctx: AppContext, client: TestClient, world: World) -> None:
    door, tenant, admin = world.ids["door1"], world.ids["tenant1"], world.auth("admin_a")
    assert ctx.access.check(door, utcnow(), person_id=tenant).allowed

    assert client.post(f"/v1/grants/{world.ids['grant1']}/suspend", headers=admin, json={"reason": "unpaid"}).status_code == 200
    assert ctx.access.check(door, utcnow(), person_id=tenant).reasons == ("grant_suspended",)
    assert client.post(f"/v1/grants/{world.ids['grant1']}/reinstate", headers=admin, json={"reason": "paid"}).status_code == 200
    assert ctx.access.check(door, utcnow(), person_id=tenant).allowed

    assert client.patch(f"/v1/doors/{door}", headers=admin, json={"status": "suspended"}).status_code == 200
    assert ctx.access.check(door, utcnow(), person_id=tenant).reasons == ("door_inactive",)
    assert client.patch(f"/v1/doors/{door}", headers=admin, json={"status": "active"}).status_code == 200

    # Taking the flat door out of the unit's group takes it out of the tenant's reach.
    group = client.get(f"/v1/units/{world.ids['unit1']}", headers=admin).json()["door_group_id"]
    assert client.put(f"/v1/door-groups/{group}/doors", headers=admin, json={"door_ids": [world.ids["entrance_a"]]}).status_code == 200
    assert ctx.access.check(door, utcnow(), person_id=tenant).reasons == ("no_grant_for_door",)
    assert ctx.access.check(world.ids["entrance_a"], utcnow(), person_id=tenant).allowed


def test_a_change_whose_notice_was_lost_is_picked_up_by_the_version_poll(ctx: AppContext, world: World) -> None:
    door, tenant = world.ids["door1"], world.ids["tenant1"]
    assert ctx.access.check(door, utcnow(), person_id=tenant).allowed
    # Another engine on the same database is not attached to this process's notices: as if the
    # notice from another node never arrived.
    other = Database(ctx.db.url)
    try:
        with other.session() as s:
            s.get(Person, tenant).status = Status.suspended  # type: ignore[union-attr]
    finally:
        other.dispose()
    deadline = time.monotonic() + 5
    while ctx.access.check(door, utcnow(), person_id=tenant).allowed:
        assert time.monotonic() < deadline, "the poll never noticed the change"
        time.sleep(0.1)
    assert ctx.access.check(door, utcnow(), person_id=tenant).reasons == ("subject_suspended",)


def test_use_limits_are_counted_in_the_database(ctx: AppContext, world: World) -> None:
    door, tenant = world.ids["door1"], world.ids["tenant1"]
    with ctx.db.session() as s:
        s.get(Grant, world.ids["grant1"]).max_uses = 2  # type: ignore[union-attr]
    def decide() -> AccessResult:
        return record_decision(ctx, ctx.access.check(door, utcnow(), person_id=tenant), lambda r: NewEvent(kind="decision", actor="test", data={"allow": r.allowed}))

    results = [decide() for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    assert results[2].reasons == ("uses_exhausted",)
    with ctx.db.session() as s:
        assert s.get(Grant, world.ids["grant1"]).uses == 2  # type: ignore[union-attr]
        assert s.get(Door, door) is not None


def test_a_use_is_not_taken_from_a_grant_revoked_after_the_check(ctx: AppContext, world: World) -> None:
    from idsvc.registry.access import consume_use

    with ctx.db.session() as s:
        grant = s.get(Grant, world.ids["grant1"])
        grant.max_uses, grant.status = 5, Status.revoked  # type: ignore[union-attr]
    with ctx.db.session() as s:
        assert consume_use(s, world.ids["grant1"]) is False
        assert s.get(Grant, world.ids["grant1"]).uses == 0  # type: ignore[union-attr]


def test_a_door_id_given_to_another_site_after_a_restore_is_found_there(ctx: AppContext, world: World) -> None:
    """After a restore (or a reset) a door id may belong to another site than the index remembers:
    forgetting the copies must forget which site each door was in too (it answered door_unknown)."""
    from sqlalchemy import text

    door = world.ids["entrance_b"]
    assert ctx.access.door(door).site_id == world.ids["site_b"]  # type: ignore[union-attr]
    with ctx.db.engine.begin() as connection:  # the restored database: the id is now site a's door
        connection.execute(text("UPDATE doors SET site_id = :a, building_id = :b, code = :c WHERE id = :d"),
                           {"a": world.ids["site_a"], "b": world.ids["building_a"], "c": "restored-door", "d": door})
    ctx.access.forget()  # what a resync or a changed data version does
    found = ctx.access.door(door)
    assert found is not None and found.site_id == world.ids["site_a"]


def test_an_unregistered_plate_is_an_unknown_subject_in_both(ctx: AppContext, world: World) -> None:
    door = world.ids["entrance_a"]
    with ctx.db.session() as s:
        db = check_access(s, door, utcnow(), plate="粤Z99999")
    mem = ctx.access.check(door, utcnow(), plate="粤Z99999")
    assert (db.allowed, db.reasons) == (mem.allowed, mem.reasons) == (False, ("subject_unknown",))


def test_the_index_needs_exactly_one_subject(ctx: AppContext, world: World) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ctx.access.check(world.ids["door1"], utcnow())
    with pytest.raises(ValueError, match="exactly one"):
        ctx.access.check(world.ids["door1"], utcnow(), person_id=world.ids["tenant1"], plate="粤B12345")
