"""The console's audit search and CSV export show exactly what the API shows the same key."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from tests.console.conftest import sign_in
from tests.world import World


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_export_is_the_apis_export_for_each_role(client: TestClient, world: World) -> None:
    for role in ("district", "admin_a", "admin_b", "owner1", "owner2"):
        sign_in(client, world.tokens[role])
        console = _rows(client.get("/console/audit.csv", params={"kind": "tenancy."}).text)
        api = _rows(client.get("/v1/audit/events.csv", params={"kind": "tenancy."}, headers=world.auth(role)).text)
        assert console == api, role
        expected = {"district": 2, "admin_a": 2, "admin_b": 0, "owner1": 1, "owner2": 1}[role]
        assert len(console) - 1 == expected, role


def test_search_filters_by_door_and_pages(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin_a"])
    page = client.get("/console/audit", params={"door_id": world.ids["door1"]})
    assert page.status_code == 200
    api = client.get("/v1/audit/events", params={"door_id": world.ids["door1"]}, headers=world.auth("admin_a")).json()["events"]
    body = page.text.split('id="audit-table"', 1)[1]
    assert api and all(f"<td>{e['seq']}</td>" in body for e in api)
    assert body.count("<tr>") - 1 == len(api)  # the header row, then one per event


def test_a_reversed_range_is_a_clear_error(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin_a"])
    answer = client.get("/console/audit", params={"since": "2026-12-05", "until": "2026-12-01"})
    assert answer.status_code == 422 and 'data-code="invalid_time_range"' in answer.text
