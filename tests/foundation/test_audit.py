"""The audit trail: every change writes its event, the hash chain verifies, tampering is found, queries
filter and scope by caller, and the CSV export has one row per event."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from idsvc.audit import chain as audit_chain
from idsvc.audit import service as audit
from idsvc.audit.models import AuditEvent, AuditHead
from idsvc.auth.models import ApiKey
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.registry.models import PersonKind
from idsvc.registry.scope import unit_door_group_id
from tests.world import World


def window(days: int = 30) -> dict[str, str]:
    return {"valid_from": utcnow().isoformat(), "valid_until": (utcnow() + timedelta(days=days)).isoformat()}


def head_seq(ctx: AppContext) -> int:
    with ctx.db.session() as s:
        return audit.chain_head(s)[0]


def new_events(ctx: AppContext, after: int) -> list[AuditEvent]:
    with ctx.db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)))


def verify(ctx: AppContext) -> audit.VerifyReport:
    with ctx.db.session() as s:
        return audit.verify(s)


# --- every change writes an event ----------------------------------------------------------------------------
def test_every_change_writes_its_event(ctx: AppContext, client: TestClient, world: World) -> None:
    i = dict(world.ids)
    with ctx.db.session() as s:
        i["group1"] = unit_door_group_id(s, i["unit1"])  # type: ignore[assignment]
    created: dict[str, int] = {}
    # (who, method, url, body, the kinds it must write in order); ids of rows created earlier are filled in.
    steps: list[tuple[str, str, str, Any, list[str]]] = [
        ("district", "POST", "/v1/sites", {"code": "site-c", "name": "C"}, ["site.created"]),
        ("admin_a", "PATCH", "/v1/sites/{site_a}", {"name": "Site A renamed"}, ["site.updated"]),
        ("admin_a", "PATCH", "/v1/sites/{site_a}", {"name": "Site A renamed"}, []),  # no change, no event
        ("admin_a", "POST", "/v1/buildings", {"site_id": "{site_a}", "code": "b2", "name": "B2"}, ["building.created"]),
        ("owner1", "POST", "/v1/units", {"building_id": "{building_a}", "label": "103"}, ["unit.registered"]),
        ("admin_a", "PATCH", "/v1/units/{unit1}", {"kind": "shop"}, ["unit.updated"]),
        ("admin_a", "POST", "/v1/doors", {"site_id": "{site_a}", "code": "gate", "name": "Gate", "kind": "gate_lane"}, ["door.created"]),
        ("admin_a", "PATCH", "/v1/doors/{door1}", {"status": "suspended"}, ["door.updated"]),
        ("admin_a", "POST", "/v1/door-groups", {"site_id": "{site_a}", "name": "all", "door_ids": ["{door1}"]}, ["door_group.created"]),
        ("admin_a", "PUT", "/v1/door-groups/{group1}/doors", {"door_ids": ["{entrance_a}", "{door1}"]}, ["door_group.doors_set"]),
        ("admin_a", "POST", "/v1/devices", {"site_id": "{site_a}", "code": "cam", "name": "Cam", "kind": "face_camera"}, ["device.created"]),
        ("admin_a", "PATCH", "/v1/devices/{device1}", {"door_ids": []}, ["device.updated"]),
        ("owner1", "POST", "/v1/people", {"site_id": "{site_a}", "display_name": "New tenant", "kind": "tenant"}, ["person.created"]),
        ("admin_a", "PATCH", "/v1/people/{tenant1}", {"phone": "+86 10 1234 5678"}, ["person.viewed", "person.updated"]),
        ("admin_a", "GET", "/v1/people/{tenant1}", None, ["person.viewed"]),  # staff reading personal data is audited
        ("admin_a", "GET", "/v1/people?site_id={site_a}", None, ["person.listed"]),
        ("tenant1", "GET", "/v1/people/{tenant1}", None, []),  # reading oneself is not
        ("admin_a", "POST", "/v1/vehicles", {"site_id": "{site_a}", "plate": "AB123"}, ["vehicle.created"]),
        ("owner1", "POST", "/v1/units/{unit1}/tenants", {"person_id": "{tenant1}", **window()}, ["grant.created", "tenancy.started"]),
        ("admin_a", "POST", "/v1/grants", {"door_group_id": "{group1}", "person_id": "{tenant2}", **window()}, ["grant.created"]),
        ("owner1", "POST", "/v1/grants/{grant1}/suspend", {"reason": "rent"}, ["grant.suspended"]),
        ("owner1", "POST", "/v1/grants/{grant1}/reinstate", {"reason": "paid"}, ["grant.reinstated"]),
        ("owner1", "POST", "/v1/grants/{grant1}/revoke", {"reason": "left"}, ["grant.revoked"]),
        # Ending the tenancy revokes the one grant still live (the second one added above) and says so.
        ("owner1", "DELETE", "/v1/units/{unit1}/tenants/{tenant1}", None, ["grant.revoked", "tenancy.ended"]),
        ("admin_a", "POST", "/v1/api-keys", {"role": "tenant", "person_id": "{tenant2}"}, ["api_key.created"]),
        ("admin_a", "DELETE", "/v1/api-keys/{new_key}", None, ["api_key.revoked"]),
        ("admin_a", "DELETE", "/v1/api-keys/{new_key}", None, []),  # revoking twice changes nothing
    ]

    def fill(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value.count("{") == 1:
            return {**i, **created}[value[1:-1]]
        if isinstance(value, str):
            return value.format(**i, **created)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    wrong = {}
    for who, method, url, body, kinds in steps:
        before = head_seq(ctx)
        response = client.request(method, fill(url), headers=world.auth(who), json=fill(body))
        assert response.status_code < 300, (method, url, response.text)
        if method == "POST" and url == "/v1/api-keys":
            created["new_key"] = response.json()["id"]
        got = [e.kind for e in new_events(ctx, before)]
        if got != kinds:
            wrong[f"{method} {url}"] = got
    assert wrong == {}
    report = verify(ctx)
    assert report.ok and report.problems == [] and report.events_checked == head_seq(ctx)


def test_events_name_actor_and_what_they_touch(ctx: AppContext, client: TestClient, world: World) -> None:
    before = head_seq(ctx)
    response = client.post(f"/v1/units/{world.ids['unit1']}/tenants", headers=world.auth("owner1"), json={"person_id": world.ids["tenant1"], **window()})
    assert response.status_code == 201
    events = new_events(ctx, before)
    assert [e.kind for e in events] == ["grant.created", "tenancy.started"]
    for event in events:
        assert event.actor == f"person:{world.ids['owner1']}"
        assert (event.site_id, event.unit_id, event.person_id) == (world.ids["site_a"], world.ids["unit1"], world.ids["tenant1"])
    assert events[0].entity_type == "grant" and events[0].entity_id == response.json()["id"]
    with ctx.db.session() as s:
        district_key = s.scalar(select(ApiKey.id).where(ApiKey.label == "district"))
    before = head_seq(ctx)
    client.post("/v1/sites", headers=world.auth("district"), json={"code": "site-c", "name": "C"})
    assert new_events(ctx, before)[0].actor == f"key:{district_key}"


def test_a_refused_change_writes_nothing(ctx: AppContext, client: TestClient, world: World) -> None:
    before = head_seq(ctx)
    # fails after the unit was loaded and checked: the transaction, audit event included, rolls back
    response = client.post("/v1/units", headers=world.auth("admin_a"), json={"building_id": world.ids["building_a"], "label": "101"})
    assert response.status_code == 409
    assert head_seq(ctx) == before and new_events(ctx, before) == []


# --- the chain and tampering ---------------------------------------------------------------------------------
def test_fresh_trail_verifies_over_http(client: TestClient, world: World) -> None:
    report = client.get("/v1/audit/verify", headers=world.auth("district")).json()
    assert report["ok"] is True and report["problems"] == []
    head = client.get("/v1/audit/head", headers=world.auth("admin_a")).json()
    assert report["events_checked"] == report["head_seq"] == head["seq"] > 20
    assert report["head_hash"] == head["hash"]


def test_an_empty_trail_verifies(ctx: AppContext) -> None:
    assert verify(ctx).ok and verify(ctx).events_checked == 0


@pytest.fixture
def chain(ctx: AppContext) -> int:
    """Twenty events written the way services write them (cheaper than building the world)."""
    with ctx.db.session() as s:
        for n in range(20):
            audit.append(s, audit.NewEvent(kind="test.event", actor=f"person:{n % 3}", site_id=1, unit_id=n % 2, data={"n": n, "text": "é,\"q\""}))
    return 20


def tamper(ctx: AppContext, *statements: Any) -> None:
    with ctx.db.session() as s:
        for statement in statements:
            s.execute(statement)


def last_seq(ctx: AppContext) -> int:
    return head_seq(ctx)


@pytest.mark.usefixtures("chain")
def test_editing_a_rows_data_is_detected(ctx: AppContext) -> None:
    assert verify(ctx).ok
    tamper(ctx, update(AuditEvent).where(AuditEvent.seq == 5).values(data={"label": "forged"}))
    report = verify(ctx)
    assert not report.ok and any("event 5" in p and "edited" in p for p in report.problems)


@pytest.mark.usefixtures("chain")
def test_editing_the_actor_or_time_is_detected(ctx: AppContext) -> None:
    tamper(ctx, update(AuditEvent).where(AuditEvent.seq == 3).values(actor="person:1"))
    tamper(ctx, update(AuditEvent).where(AuditEvent.seq == 7).values(at=utcnow() - timedelta(days=400)))
    problems = verify(ctx).problems
    assert any("event 3" in p for p in problems) and any("event 7" in p for p in problems)


@pytest.mark.usefixtures("chain")
def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        row = s.get(AuditEvent, 4)
        assert row is not None
        row.data = {"forged": True}
        row.hash = audit_chain.chain_hash(row.prev_hash, row)
    problems = verify(ctx).problems
    assert problems and all("event 4" not in p for p in problems)
    assert any("event 5: prev_hash" in p for p in problems)


@pytest.mark.usefixtures("chain")
def test_deleting_a_middle_row_is_detected(ctx: AppContext) -> None:
    tamper(ctx, delete(AuditEvent).where(AuditEvent.seq == 6))
    report = verify(ctx)
    assert not report.ok
    assert any("6..6 are missing" in p for p in report.problems)
    assert any("event 7: prev_hash" in p for p in report.problems)


@pytest.mark.usefixtures("chain")
def test_verify_reads_in_chunks_without_losing_the_thread(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        assert audit.verify(s, chunk=3).ok and audit.verify(s, chunk=3).events_checked == 20
    tamper(ctx, delete(AuditEvent).where(AuditEvent.seq == 7))  # the first row of the third chunk
    with ctx.db.session() as s:
        problems = audit.verify(s, chunk=3).problems
    assert any("7..7 are missing" in p for p in problems) and any("event 8: prev_hash" in p for p in problems)


@pytest.mark.usefixtures("chain")
def test_deleting_the_last_rows_is_detected(ctx: AppContext) -> None:
    end = last_seq(ctx)
    tamper(ctx, delete(AuditEvent).where(AuditEvent.seq > end - 2))
    report = verify(ctx)
    assert not report.ok and report.events_checked == end - 2
    assert any("removed at the end" in p for p in report.problems)


@pytest.mark.usefixtures("chain")
def test_deleting_every_row_is_detected(ctx: AppContext) -> None:
    tamper(ctx, delete(AuditEvent))
    report = verify(ctx)
    assert not report.ok and report.events_checked == 0


@pytest.mark.usefixtures("chain")
def test_reordering_rows_is_detected(ctx: AppContext) -> None:
    # Swap events 8 and 9 (their numbers; the rows keep their content and hashes).
    tamper(
        ctx,
        update(AuditEvent).where(AuditEvent.seq == 8).values(seq=-8),
        update(AuditEvent).where(AuditEvent.seq == 9).values(seq=8),
        update(AuditEvent).where(AuditEvent.seq == -8).values(seq=9),
    )
    problems = verify(ctx).problems
    assert any("event 8" in p for p in problems) and any("event 9" in p for p in problems)


@pytest.mark.usefixtures("chain")
def test_rewriting_the_whole_tail_is_caught_by_a_saved_head(ctx: AppContext) -> None:
    """Someone with write access can recompute every hash after an edit; a head saved earlier by an
    outside witness (GET /v1/audit/head) still differs."""
    with ctx.db.session() as s:
        witnessed = audit.chain_head(s)
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.seq >= 10).order_by(AuditEvent.seq)))
        prev = rows[0].prev_hash
        rows[0].data = {"forged": True}
        for row in rows:
            row.prev_hash = prev
            row.hash = prev = audit_chain.chain_hash(prev, row)
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))
    assert verify(ctx).ok  # the rewritten chain is self-consistent ...
    with ctx.db.session() as s:
        assert audit.chain_head(s) != witnessed  # ... but not the chain the witness saw


@pytest.mark.usefixtures("chain")
def test_appends_continue_the_chain_across_transactions(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        start = audit.chain_head(s)
        rows = audit.append(s, audit.NewEvent(kind="test.one", actor="t"), audit.NewEvent(kind="test.two", actor="t"))
    assert [r.seq for r in rows] == [start[0] + 1, start[0] + 2]
    assert rows[0].prev_hash == start[1] and rows[1].prev_hash == rows[0].hash
    with ctx.db.session() as s:
        assert audit.chain_head(s) == (start[0] + 2, rows[1].hash)
    assert verify(ctx).ok


def test_concurrent_writers_keep_one_unbroken_chain(ctx: AppContext) -> None:
    """Eight request threads change the registry at once: every change gets its own sequence number and
    the chain still verifies (the head row serialises appends on PostgreSQL and SQLite alike)."""
    import threading

    from idsvc.auth.principal import OPERATOR
    from idsvc.registry import people, schemas, sites

    with ctx.db.session() as s:
        site_id = sites.create_site(s, OPERATOR, schemas.SiteIn(code="busy", name="Busy")).id
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            for k in range(3):
                with ctx.db.session() as s:
                    people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site_id, display_name=f"P{n}-{k}", kind=PersonKind.tenant))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    report = verify(ctx)
    assert report.ok, report.problems
    assert report.events_checked == report.head_seq == 1 + 8 * 3


# --- queries and scoping --------------------------------------------------------------------------------------
def events(client: TestClient, world: World, who: str, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/v1/audit/events?limit=1000&{query}", headers=world.auth(who))
    assert response.status_code == 200, response.text
    return response.json()["events"]  # type: ignore[no-any-return]


@pytest.fixture
def busy(ctx: AppContext, client: TestClient, world: World) -> dict[str, Any]:
    """Some activity on both sides of site A and in site B, by different actors."""
    i = world.ids
    assert client.post(f"/v1/grants/{i['grant2']}/suspend", headers=world.auth("owner2"), json={"reason": "x"}).status_code == 200
    assert client.patch(f"/v1/doors/{i['door1']}", headers=world.auth("admin_a"), json={"name": "Front"}).status_code == 200
    assert client.post("/v1/buildings", headers=world.auth("admin_b"), json={"site_id": i["site_b"], "code": "b2", "name": "B2"}).status_code == 201
    assert client.patch(f"/v1/people/{i['tenant1']}", headers=world.auth("tenant1"), json={"phone": "+86 20 1234 5678"}).status_code == 200
    return i


def test_filters_by_site_door_person_actor_and_kind(ctx: AppContext, client: TestClient, world: World, busy: dict[str, Any]) -> None:
    everything = events(client, world, "district")
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    for field, value in (("site_id", busy["site_b"]), ("door_id", busy["door1"]), ("person_id", busy["tenant1"]), ("actor", f"person:{busy['owner2']}")):
        got = events(client, world, "district", f"{field}={value}")
        want = [e for e in everything if e[field] == value]
        assert got == want and want, field
    assert {e["kind"] for e in events(client, world, "district", "kind=grant.suspended")} == {"grant.suspended"}
    prefixed = events(client, world, "district", "kind=grant.")
    assert prefixed == [e for e in everything if e["kind"].startswith("grant.")]
    assert {e["kind"] for e in prefixed} == {"grant.created", "grant.suspended"}
    assert events(client, world, "district", "kind=grant") == []  # without the dot: an exact kind


def test_kind_prefix_is_literal(ctx: AppContext, client: TestClient, world: World) -> None:
    with ctx.db.session() as s:
        audit.append(s, audit.NewEvent(kind="doorXgroup.created", actor="t"), audit.NewEvent(kind="door_group.created", actor="t"))
    assert [e["kind"] for e in events(client, world, "district", "kind=door_group.")] == ["door_group.created"]


def test_filter_by_time_range(ctx: AppContext, client: TestClient, world: World) -> None:
    t = utcnow()
    with ctx.db.session() as s:
        audit.append(
            s,
            audit.NewEvent(kind="test.old", actor="t", at=t - timedelta(days=2)),
            audit.NewEvent(kind="test.edge", actor="t", at=t - timedelta(days=1)),
            audit.NewEvent(kind="test.new", actor="t", at=t + timedelta(days=1)),
        )
    since, until = (t - timedelta(days=1)).isoformat(), (t + timedelta(days=1)).isoformat()
    params = {"since": since, "until": until, "kind": "test.", "limit": 1000}
    got = client.get("/v1/audit/events", params=params, headers=world.auth("district")).json()["events"]
    assert [e["kind"] for e in got] == ["test.edge"]  # since inclusive, until exclusive


def test_cursor_pages_through_everything_once(client: TestClient, world: World, busy: dict[str, Any]) -> None:
    everything = events(client, world, "district")
    seen: list[int] = []
    cursor = None
    for _ in range(100):
        query = {"limit": 7, **({"after_seq": cursor} if cursor is not None else {})}
        page = client.get("/v1/audit/events", params=query, headers=world.auth("district")).json()
        seen += [e["seq"] for e in page["events"]]
        cursor = page["next_after_seq"]
        if cursor is None:
            break
        assert cursor == seen[-1]
    assert seen == [e["seq"] for e in everything]


def test_scoping_owner_tenant_and_site_admin(client: TestClient, world: World, busy: dict[str, Any]) -> None:
    everything = events(client, world, "district")
    owner1 = events(client, world, "owner1")
    assert owner1 and {e["unit_id"] for e in owner1} == {busy["unit1"]}
    assert owner1 == [e for e in everything if e["unit_id"] == busy["unit1"]]
    owner2 = events(client, world, "owner2")
    assert "grant.suspended" in {e["kind"] for e in owner2} and {e["unit_id"] for e in owner2} == {busy["unit2"]}
    # Filters narrow the scope; they never widen it.
    assert events(client, world, "owner1", f"person_id={busy['tenant2']}") == []
    assert events(client, world, "owner1", f"site_id={busy['site_b']}") == []
    tenant1 = events(client, world, "tenant1")
    assert tenant1 and {e["person_id"] for e in tenant1} == {busy["tenant1"]}
    assert events(client, world, "tenant1", f"person_id={busy['tenant2']}") == tenant1  # their own, whatever they ask
    admin_b = events(client, world, "admin_b")
    assert admin_b == [e for e in everything if e["site_id"] == busy["site_b"]]
    assert "building.created" in {e["kind"] for e in admin_b}
    assert events(client, world, "admin_b", f"site_id={busy['site_a']}") == []
    admin_a = events(client, world, "admin_a")
    assert admin_a == [e for e in everything if e["site_id"] == busy["site_a"]]


def test_csv_has_a_header_and_one_row_per_event(client: TestClient, world: World, busy: dict[str, Any]) -> None:
    for who in ("district", "owner1", "admin_b"):
        listed = events(client, world, who)
        response = client.get("/v1/audit/events.csv", headers=world.auth(who))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == audit.CSV_COLUMNS
        assert [int(r[0]) for r in rows[1:]] == [e["seq"] for e in listed], who
        for row, event in zip(rows[1:], listed, strict=True):
            record = dict(zip(rows[0], row, strict=True))
            assert record["kind"] == event["kind"] and record["hash"] == event["hash"]
    filtered = list(csv.reader(io.StringIO(client.get("/v1/audit/events.csv?kind=grant.", headers=world.auth("district")).text)))
    assert len(filtered) - 1 == len(events(client, world, "district", "kind=grant."))


def test_csv_export_reads_in_chunks(ctx: AppContext, world: World) -> None:
    with ctx.db.session() as s:
        total = audit.chain_head(s)[0]
        lines = "".join(audit.csv_lines(audit.event_to_dict(e) for e in audit.iter_events(s, audit.AuditFilter(), chunk=4)))
    rows = list(csv.reader(io.StringIO(lines)))
    assert len(rows) == total + 1 and [int(r[0]) for r in rows[1:]] == list(range(1, total + 1))
