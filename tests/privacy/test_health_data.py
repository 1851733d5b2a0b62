"""Body temperature is health data: site staff see the reading and who it was; an owner sees that a
fever alarm happened at their unit's door (type, time, door, state), never the reading or the person.
Checked per role on every view: the alarms API and its live stream, the audit API and its CSV, the
console's audit page and CSV, and the operator CLI (idsvc/auth/health_data.py is the one rule)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from idsvc.context import AppContext
from tests.bridge.conftest import ServiceProcess
from tests.console.conftest import sign_in
from tests.privacy.conftest import Cli
from tests.world import World

NAME = "Zhang Wei"  # what a terminal's raw event says about who was measured
FEVER = {"celsius": 38.6, "reasons": ["temperature_high"], "advice": "re-check with a clinical thermometer"}
NORMAL = {"celsius": 36.4, "reasons": [], "advice": None}
STAFF, OWNER = ("district", "admin_a"), "owner1"


def _events(world: World, tag: str = "") -> list[dict[str, Any]]:
    """What a bridge uploads for door1 (owner1's unit): a fever alarm, a refusal for it, a normal entry."""
    door, tenant = world.ids["door1"], world.ids["tenant1"]
    return [
        {"event_id": f"fever-0001{tag}", "kind": "fever_detected", "at": "2026-12-01T08:00:00Z", "door_id": door,
         "data": {"alarm": True, "temperature": FEVER, "advice": FEVER["advice"], "source": "device", "admitted_by_terminal": False,
                  "event": {"name": NAME, "employeeNoString": "E42"}}},
        {"event_id": f"denied-0001{tag}", "kind": "access_denied", "at": "2026-12-01T08:00:01Z", "door_id": door, "person_id": tenant,
         "data": {"reasons": ["temperature_high"], "temperature": FEVER, "decision_id": "d-1"}},
        {"event_id": f"granted-001{tag}", "kind": "access_granted", "at": "2026-12-01T09:00:00Z", "door_id": door, "person_id": tenant,
         "data": {"reasons": [], "temperature": NORMAL, "decision_id": "d-2"}},
    ]


@pytest.fixture
def fever(client: TestClient, world: World) -> int:
    """The events uploaded; the fever alarm's id."""
    answer = client.post("/v1/device/events", headers=world.auth("device1"), json={"events": _events(world)})
    assert answer.status_code == 200 and not answer.json()["rejected"], answer.text
    alarms = client.get("/v1/alarms", headers=world.auth("admin_a"), params={"type": "fever_detected"}).json()["alarms"]
    assert len(alarms) == 1
    return alarms[0]["id"]  # type: ignore[no-any-return]


def _health(value: Any) -> list[str]:
    """Every trace of the reading or the person in a JSON value: readings, temperature reasons, the name."""
    found: list[str] = []
    if isinstance(value, dict):
        found += [k for k in value if k in ("celsius", "temperature")]
        for item in value.values():
            found += _health(item)
    elif isinstance(value, list):
        for item in value:
            found += _health(item)
    elif isinstance(value, str) and (value.startswith("temperature_") or NAME in value):
        found.append(value)
    return found


def _csv(text: str) -> list[dict[str, Any]]:
    return [row | {"data": json.loads(row["data"])} for row in csv.DictReader(io.StringIO(text))]


def test_the_alarm_api_shows_owners_the_alarm_but_not_the_reading_or_the_person(client: TestClient, world: World, fever: int) -> None:
    for role in STAFF:
        alarm = client.get(f"/v1/alarms/{fever}", headers=world.auth(role)).json()
        assert alarm["data"]["temperature"] == FEVER and alarm["data"]["event"]["name"] == NAME, role
    owner = world.auth(OWNER)
    listed = client.get("/v1/alarms", headers=owner).json()["alarms"]
    one = client.get(f"/v1/alarms/{fever}", headers=owner).json()
    acknowledged = client.post(f"/v1/alarms/{fever}/acknowledge", headers=owner, json={}).json()
    for alarm in ([a for a in listed if a["id"] == fever][0], one, acknowledged):
        assert (alarm["type"], alarm["door_id"], alarm["state"], alarm["first_at"]) == ("fever_detected", world.ids["door1"], "active", "2026-12-01T08:00:00.000000Z")
        assert _health(alarm) == [] and alarm["data"]["withheld"] == ["admitted_by_terminal", "event", "temperature"]
        assert alarm["data"]["advice"] == FEVER["advice"]
    assert acknowledged["acknowledged"] is True
    cleared = client.post(f"/v1/alarms/{fever}/clear", headers=world.auth("admin_a"), json={"reason": f"{NAME} sent home with 38.6"}).json()
    assert cleared["clear_reason"].startswith(NAME)
    assert client.get(f"/v1/alarms/{fever}", headers=owner).json()["clear_reason"] is None  # staff's note names the person
    assert client.get(f"/v1/alarms/{fever}", headers=owner).json()["state"] == "cleared"


def test_the_audit_trail_and_its_csv_hide_readings_and_who_had_a_fever_from_owners(client: TestClient, world: World, fever: int) -> None:
    params = {"door_id": world.ids["door1"], "kind": "device."}
    for role in (*STAFF, OWNER):
        events = client.get("/v1/audit/events", headers=world.auth(role), params=params).json()["events"]
        exported = _csv(client.get("/v1/audit/events.csv", headers=world.auth(role), params=params).text)
        for rows in (events, exported):
            by_kind = {e["kind"]: e for e in rows}
            assert set(by_kind) == {"device.fever_detected", "device.access_denied", "device.access_granted"}, role
            if role in STAFF:
                assert by_kind["device.access_denied"]["data"]["temperature"] == FEVER
                assert str(by_kind["device.access_denied"]["person_id"]) == str(world.ids["tenant1"])
                continue
            assert _health(rows) == [], role
            # A finding (fever, refusal for temperature): what happened and where, not who.
            assert by_kind["device.fever_detected"]["door_id"] in (world.ids["door1"], str(world.ids["door1"]))
            assert by_kind["device.access_denied"]["person_id"] in (None, "")
            assert by_kind["device.access_denied"]["data"]["withheld"] == ["decision_id", "reasons", "temperature"]
            # A normal reading: the entry stays the owner's to see, without the reading.
            assert str(by_kind["device.access_granted"]["person_id"]) == str(world.ids["tenant1"])
            assert by_kind["device.access_granted"]["data"] == {"event_id": "granted-001", "reasons": [], "decision_id": "d-2", "withheld": ["temperature"]}
    alarm_events = client.get("/v1/audit/events", headers=world.auth(OWNER), params={"kind": "alarm."}).json()["events"]
    assert [(e["kind"], e["data"]["type"]) for e in alarm_events] == [("alarm.raised", "fever_detected")]


def test_a_search_by_person_does_not_tell_an_owner_who_had_the_fever(client: TestClient, world: World, fever: int) -> None:
    params = {"person_id": world.ids["tenant1"], "kind": "device."}
    for role, kinds in (("admin_a", ["device.access_denied", "device.access_granted"]), (OWNER, ["device.access_granted"])):
        events = client.get("/v1/audit/events", headers=world.auth(role), params=params).json()["events"]
        exported = _csv(client.get("/v1/audit/events.csv", headers=world.auth(role), params=params).text)
        sign_in(client, world.tokens[role])
        page = client.get("/console/audit", params=params).text.split('id="audit-table"', 1)[1]
        assert [e["kind"] for e in events] == [e["kind"] for e in exported] == kinds, role
        assert ("device.access_denied" in page) == (role != OWNER), role


def test_a_tenant_sees_their_own_readings(client: TestClient, world: World, fever: int) -> None:
    events = client.get("/v1/audit/events", headers=world.auth("tenant1"), params={"kind": "device."}).json()["events"]
    assert {e["kind"]: e["data"]["temperature"] for e in events} == {"device.access_denied": FEVER, "device.access_granted": NORMAL}


def test_the_console_audit_page_and_export_follow_the_same_rule(client: TestClient, world: World, fever: int) -> None:
    params = {"door_id": world.ids["door1"], "kind": "device."}
    for role in (*STAFF, OWNER):
        api = client.get("/v1/audit/events.csv", headers=world.auth(role), params=params).text
        sign_in(client, world.tokens[role])
        assert client.get("/console/audit.csv", params=params).text == api, role
        page = client.get("/console/audit", params=params).text.split('id="audit-table"', 1)[1]
        shows_health = "38.6" in page and NAME in page and "temperature_high" in page
        assert shows_health == (role in STAFF), role
        assert ("36.4" in page) == (role in STAFF), role


def test_the_operator_cli_shows_the_reading(cli: Cli, world: World, fever: int) -> None:
    assert cli.json("alarm", "list")[0]["data"]["temperature"] == FEVER
    events = cli.json("audit", "list", "--kind", "device.")
    assert {e["kind"]: e["data"].get("temperature") for e in events}["device.fever_detected"] == FEVER


def test_the_live_alarm_stream_withholds_the_reading_from_owners(ctx: AppContext, world: World, tmp_path: Path) -> None:
    service = ServiceProcess(ctx, tmp_path)
    service.start()

    async def scenario() -> dict[str, list[dict[str, Any]]]:
        heard: dict[str, list[dict[str, Any]]] = {OWNER: [], "admin_a": []}
        ready = {who: asyncio.Event() for who in heard}

        async def listen(who: str) -> None:
            async with httpx.AsyncClient(base_url=service.url, timeout=None) as client:
                async with client.stream("GET", "/v1/alarms/stream", headers=world.auth(who)) as stream:
                    event = ""
                    async for line in stream.aiter_lines():
                        if line.startswith("event:"):
                            event = line.split(":", 1)[1].strip()
                            ready[who].set()
                        elif line.startswith("data:") and event == "alarm":
                            heard[who].append(json.loads(line.split(":", 1)[1]))

        listeners = [asyncio.create_task(listen(who)) for who in heard]
        async with asyncio.timeout(10):
            for event in ready.values():
                await event.wait()
        async with httpx.AsyncClient(base_url=service.url) as client:
            answer = await client.post("/v1/device/events", headers=world.auth("device1"), json={"events": _events(world, "s")})
            assert answer.status_code == 200, answer.text
        async with asyncio.timeout(10):
            while not all(heard.values()):
                await asyncio.sleep(0.05)
        for task in listeners:
            task.cancel()
        return heard

    try:
        heard = asyncio.run(scenario())
    finally:
        service.stop()
    staff, owner = heard["admin_a"][0]["alarm"], heard[OWNER][0]["alarm"]
    assert staff["type"] == owner["type"] == "fever_detected" and staff["data"]["temperature"] == FEVER
    assert _health(owner) == [] and owner["door_id"] == world.ids["door1"]
