"""Names, phones, external references and registration fields are sealed at rest: no column and no
byte of the database holds them in clear; equality lookups go through blind indexes."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from idsvc.context import AppContext
from idsvc.core.db import Database
from idsvc.core.sealing import Sealer
from idsvc.db.migrate import upgrade
from idsvc.registry import personal
from idsvc.registry.models import Person
from tests.privacy.databases import fresh_database
from tests.privacy.evidence import found_in_sqlite_files, found_in_tables
from tests.world import World

NAME, PHONE, REF, WORKPLACE = "王小明", "+86 138 0013 8000", "ID-440106199001011234", "番禺某电子厂"


def _enable_registration(client: TestClient, world: World, *fields: str) -> None:
    site = client.get(f"/v1/sites/{world.ids['site_a']}", headers=world.auth("admin_a")).json()
    settings = {**site["settings"], "registration": {"fields": list(fields)}}
    response = client.patch(f"/v1/sites/{world.ids['site_a']}", headers=world.auth("admin_a"), json={"settings": settings})
    assert response.status_code == 200, response.text


def _create(client: TestClient, world: World, **extra: Any) -> Any:
    body = {"site_id": world.ids["site_a"], "display_name": NAME, "kind": "tenant", "phone": PHONE, "external_ref": REF, **extra}
    return client.post("/v1/people", headers=world.auth("admin_a"), json=body)


def test_no_column_and_no_byte_holds_a_name_or_phone_in_clear(ctx: AppContext, client: TestClient, world: World) -> None:
    _enable_registration(client, world, "workplace", "household_address")
    response = _create(client, world, workplace=WORKPLACE, household_address="四川省南充市")
    assert response.status_code == 201, response.text
    person = response.json()
    assert (person["display_name"], person["phone"], person["external_ref"], person["workplace"]) == (NAME, PHONE, REF, WORKPLACE)
    assert client.get(f"/v1/people/{person['id']}", headers=world.auth("admin_a")).json()["display_name"] == NAME
    needles = (NAME, PHONE, "13800138000", REF, WORKPLACE, "南充")
    assert found_in_tables(ctx, *needles) == []
    if ctx.db.is_sqlite:
        assert found_in_sqlite_files(ctx.db, *needles) == []


def test_a_sealed_record_opens_only_on_its_own_row(ctx: AppContext, client: TestClient, world: World) -> None:
    person_id = _create(client, world).json()["id"]
    with ctx.db.session() as s:
        victim, other = s.get(Person, person_id), s.get(Person, world.ids["tenant1"])
        assert victim is not None and other is not None
        other.sealed = victim.sealed  # copied onto another person's row
    response = client.get(f"/v1/people/{world.ids['tenant1']}", headers=world.auth("admin_a"))
    assert response.status_code == 500 and response.json()["error"]["code"] == "sealed_data_unreadable"


def test_people_are_found_by_phone_through_the_blind_index(client: TestClient, world: World) -> None:
    person_id = _create(client, world).json()["id"]
    for written in ("+8613800138000", "+86-138-0013-8000", "+86 (138) 0013 8000"):
        found = client.get("/v1/people", params={"site_id": world.ids["site_a"], "phone": written}, headers=world.auth("admin_a")).json()
        assert [p["id"] for p in found] == [person_id], written
    assert client.get("/v1/people", params={"site_id": world.ids["site_a"], "phone": "+86 139 0000 0000"}, headers=world.auth("admin_a")).json() == []


def test_a_duplicate_external_ref_is_refused_though_sealed(client: TestClient, world: World) -> None:
    assert _create(client, world).status_code == 201
    again = _create(client, world, display_name="Someone else")
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_external_ref"
    assert REF not in again.text  # the message does not echo personal data


def test_registration_fields_only_where_the_site_collects_them(client: TestClient, world: World) -> None:
    refused = _create(client, world, occupation="electrician")
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "registration_field_not_enabled" and error["details"]["fields"] == ["occupation"]
    _enable_registration(client, world, "sex", "birth_date", "household_province", "household_address", "occupation", "workplace")
    fields = {"sex": "female", "birth_date": "1990-06-15", "household_province": "51", "household_address": "南充市顺庆区", "occupation": "electrician", "workplace": WORKPLACE}
    created = _create(client, world, **fields)
    assert created.status_code == 201, created.text
    out = created.json()
    assert {k: out[k] for k in fields} == fields
    today = date.today()
    assert out["age"] == today.year - 1990 - ((today.month, today.day) < (6, 15))
    bad = _create(client, world, external_ref="other", household_province="99")
    assert bad.status_code == 422 and "GB/T 2260" in bad.text
    unborn = _create(client, world, external_ref="other2", birth_date="2999-01-01")
    assert unborn.status_code == 422
    cleared = client.patch(f"/v1/people/{out['id']}", headers=world.auth("admin_a"), json={"occupation": None})
    assert cleared.status_code == 200 and cleared.json()["occupation"] is None


@pytest.mark.parametrize("site_settings", [{"registration": {"fields": ["passport"]}}, {"registration": {"deadline_days": -1}}, {"retention": {"decision_days": 7}}, {"retention": {"face_template_days": 31}}])
def test_site_settings_out_of_bounds_are_refused(client: TestClient, world: World, site_settings: dict[str, Any]) -> None:
    response = client.patch(f"/v1/sites/{world.ids['site_a']}", headers=world.auth("admin_a"), json={"settings": site_settings})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"


def test_the_upgrade_seals_people_already_stored(tmp_path: Path) -> None:
    """Migration 0007 seals the names and phones of an installation that predates it."""
    sealer = Sealer([bytes(range(32))])
    with fresh_database(tmp_path) as url:
        upgrade(url, "0006_audit_commitments")
        engine = sa.create_engine(url)
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO sites (id, code, name, timezone, settings, created_at) VALUES (1, 's', 'S', 'Asia/Shanghai', '{}', '2026-01-01 00:00:00')"))
            c.execute(sa.text(
                "INSERT INTO people (id, site_id, display_name, kind, phone, external_ref, pseudonym, status, created_at) "
                "VALUES (1, 1, :n, 'tenant', :p, :r, 'ab12', 'active', '2026-01-01 00:00:00')"
            ), {"n": NAME, "p": PHONE, "r": REF})
        engine.dispose()
        upgrade(url, sealer=sealer)
        db = Database(url, sealer)
        with db.session() as s:
            person = s.get(Person, 1)
            assert person is not None and person.audit_pseudonym and person.registration_filled == []
            assert personal.read(s, person).model_dump(exclude_none=True) == {"display_name": NAME, "phone": PHONE, "external_ref": REF}
            assert s.scalar(sa.select(Person.id).where(personal.with_phone(s, "+8613800138000"))) == 1
            columns = {c["name"] for c in sa.inspect(s.get_bind()).get_columns("people")}
            assert not columns & {"display_name", "phone", "external_ref"}
        db.dispose()
