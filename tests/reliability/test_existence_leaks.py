"""Defect 6 of issue 11: a row outside the caller's scope is answered exactly like a row that does not
exist (the same status, code and body, the id aside), so a key of one site cannot probe another by id."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from idsvc.auth import service as keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.registry import people, schemas
from idsvc.registry.models import PersonKind
from tests.world import World

MISSING = 999_999


@pytest.fixture
def other(ctx: AppContext, world: World) -> dict[str, int]:
    """Rows of site B that site A's admin must not be able to tell from missing ones."""
    with ctx.db.session() as s:
        person = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=world.ids["site_b"], display_name="B tenant", kind=PersonKind.tenant))
        key = keys.issue_key(s, OPERATOR, Role.tenant, person_id=person.id, label="b").key
        return {"person": person.id, "key": key.id}


def _window() -> dict[str, str]:
    now = utcnow()
    return {"valid_from": now.isoformat(), "valid_until": (now + timedelta(days=1)).isoformat()}


def _requests(world: World, subject: int, key: int, site: int) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(name, method, url, body) with another site's row (or a missing one) in place."""
    ids = world.ids
    return [
        ("grant for a person", "POST", "/v1/grants", {"door_group_id": _group(world), "person_id": subject, **_window()}),
        ("tenant key for a person", "POST", "/v1/api-keys", {"role": "tenant", "person_id": subject, "label": "x"}),
        ("site admin key for a site", "POST", "/v1/api-keys", {"role": "site_admin", "site_id": site, "label": "x"}),
        ("revoke a key", "DELETE", f"/v1/api-keys/{key}", None),
        ("access check of a person", "POST", "/v1/access/check", {"door_id": ids["door1"], "person_id": subject}),
        ("read a person", "GET", f"/v1/people/{subject}", None),
        ("a person's grants", "GET", f"/v1/grants?person_id={subject}", None),
        *[(f"list {what} of a site", "GET", f"/v1/{what}?site_id={site}", None) for what in ("people", "doors", "door-groups", "devices", "vehicles", "grants", "api-keys")],
    ]


def _group(world: World) -> int:
    return world.ids["group_a"]


def _normalised(answer: Any, row_id: int) -> tuple[int, str]:
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", answer.text)  # the access check's own clock
    return answer.status_code, re.sub(rf"\b{row_id}\b", "<id>", text)


def test_another_sites_rows_look_exactly_like_missing_ones(client: TestClient, ctx: AppContext, world: World, other: dict[str, int]) -> None:
    groups = client.get("/v1/door-groups", headers=world.auth("admin_a")).json()
    world.ids["group_a"] = groups[0]["id"]
    seen = _requests(world, other["person"], other["key"], world.ids["site_b"])
    absent = _requests(world, MISSING, MISSING, MISSING)
    differences = []
    for (name, method, url, body), (_, _, missing_url, missing_body) in zip(seen, absent, strict=True):
        real = client.request(method, url, headers=world.auth("admin_a"), json=body)
        fake = client.request(method, missing_url, headers=world.auth("admin_a"), json=missing_body)
        row = other["key"] if "key" in name and "for" not in name else world.ids["site_b"] if "site" in name else other["person"]
        if _normalised(real, row) != _normalised(fake, MISSING):
            differences.append((name, real.status_code, real.text[:160], fake.status_code, fake.text[:160]))
        assert real.status_code < 500 and fake.status_code < 500
    assert differences == []


def test_a_district_admin_still_hears_why(client: TestClient, world: World, other: dict[str, int]) -> None:
    """Who may see both sites gets the precise reason, not a pretended absence."""
    answer = client.post("/v1/access/check", headers=world.auth("district"), json={"door_id": world.ids["door1"], "person_id": other["person"]})
    assert answer.status_code == 200 and "subject_other_site" in answer.json()["reasons"]
