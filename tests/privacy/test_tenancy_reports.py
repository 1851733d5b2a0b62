"""Tenancy dates are queryable for the police registration of rental housing: arrivals and departures
per day in the site's time zone, and registrations overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.registry.models import Grant
from tests.world import World


def _person(client: TestClient, world: World, name: str) -> int:
    return client.post("/v1/people", headers=world.auth("admin_a"), json={"site_id": world.ids["site_a"], "display_name": name, "kind": "tenant"}).json()["id"]  # type: ignore[no-any-return]


def _tenancy(client: TestClient, world: World, person: int, start: str, end: str) -> int:
    response = client.post(f"/v1/units/{world.ids['unit2']}/tenants", headers=world.auth("admin_a"), json={"person_id": person, "valid_from": start, "valid_until": end})
    assert response.status_code == 201, response.text
    return response.json()["id"]  # type: ignore[no-any-return]


def test_arrivals_and_departures_per_day_in_the_sites_time_zone(ctx: AppContext, client: TestClient, world: World) -> None:
    # 00:30 in Shanghai on 1 March is still 29 February in UTC: it is an arrival of 1 March.
    a = _person(client, world, "A")
    _tenancy(client, world, a, "2028-03-01T00:30:00+08:00", "2028-09-01T00:00:00+08:00")
    b = _person(client, world, "B")
    _tenancy(client, world, b, "2028-02-20T10:00:00+08:00", "2028-03-02T12:00:00+08:00")  # leaves when the lease runs out
    c = _person(client, world, "C")
    grant_c = _tenancy(client, world, c, "2028-03-01T09:00:00+08:00", "2029-03-01T00:00:00+08:00")
    assert client.delete(f"/v1/units/{world.ids['unit2']}/tenants/{c}", headers=world.auth("owner2")).status_code == 200  # taken off early
    with ctx.db.session() as s:  # ... on 3 March, 23:00 Shanghai
        s.execute(update(Grant).where(Grant.id == grant_c).values(ended_at=datetime(2028, 3, 3, 15, 0, tzinfo=UTC)))
    days = client.get(f"/v1/sites/{world.ids['site_a']}/tenancies/daily", params={"from": "2028-02-29", "to": "2028-03-03"}, headers=world.auth("admin_a"))
    assert days.status_code == 200, days.text
    assert [(d["day"], d["arrivals"], d["departures"]) for d in days.json()] == [
        ("2028-02-29", 0, 0), ("2028-03-01", 2, 0), ("2028-03-02", 0, 1), ("2028-03-03", 0, 1),
    ]
    too_long = client.get(f"/v1/sites/{world.ids['site_a']}/tenancies/daily", params={"from": "2026-01-01", "to": "2027-06-01"}, headers=world.auth("admin_a"))
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "invalid_date_range"


def test_registrations_overdue_after_the_sites_deadline(client: TestClient, world: World) -> None:
    site = world.ids["site_a"]
    assert client.get(f"/v1/sites/{site}/registrations/overdue", headers=world.auth("admin_a")).json() == []  # nothing collected, nothing due
    settings = {"registration": {"fields": ["household_province", "occupation"], "deadline_days": 3}}
    assert client.patch(f"/v1/sites/{site}", headers=world.auth("admin_a"), json={"settings": settings}).status_code == 200
    now = utcnow()
    late, complete, recent = _person(client, world, "Late"), _person(client, world, "Complete"), _person(client, world, "Recent")
    for person, days_ago in ((late, 5), (complete, 5), (recent, 1)):
        _tenancy(client, world, person, (now - timedelta(days=days_ago)).isoformat(), (now + timedelta(days=90)).isoformat())
    assert client.patch(f"/v1/people/{late}", headers=world.auth("admin_a"), json={"household_province": "51"}).status_code == 200
    assert client.patch(f"/v1/people/{complete}", headers=world.auth("admin_a"), json={"household_province": "44", "occupation": "cook"}).status_code == 200
    overdue = client.get(f"/v1/sites/{site}/registrations/overdue", headers=world.auth("admin_a")).json()
    assert [(o["person_id"], o["missing"]) for o in overdue] == [(late, ["occupation"])]
