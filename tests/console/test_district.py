"""The district officer's statistics (page and JSON feed) and the registration export."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from idsvc.core.db import utcnow
from tests.console.conftest import csrf_of, sign_in
from tests.world import World

SETTINGS = {"registration": {"fields": ["sex", "birth_date", "household_province", "occupation"], "deadline_days": 3}}


def _tenant(client: TestClient, world: World, name: str, unit: str, days_ago: int, **fields: str) -> int:
    admin = world.auth("admin_a")
    person = client.post("/v1/people", headers=admin, json={"site_id": world.ids["site_a"], "display_name": name, "kind": "tenant", **fields})
    assert person.status_code == 201, person.text
    now = utcnow()
    window = {"valid_from": (now - timedelta(days=days_ago)).isoformat(), "valid_until": (now + timedelta(days=90)).isoformat()}
    answer = client.post(f"/v1/units/{world.ids[unit]}/tenants", headers=admin, json={"person_id": person.json()["id"], **window})
    assert answer.status_code == 201, answer.text
    return person.json()["id"]  # type: ignore[no-any-return]


@pytest.fixture
def village(client: TestClient, world: World) -> World:
    """Site A collects four registration fields; unit1 gets six more tenants from Guangdong and one from Sichuan."""
    assert client.patch(f"/v1/sites/{world.ids['site_a']}", headers=world.auth("admin_a"), json={"settings": SETTINGS}).status_code == 200
    for n in range(6):
        _tenant(client, world, f"粤{n}", "unit1", 1, household_province="44", sex="male", birth_date="1990-05-01", occupation="=cook")
    world.ids["sichuan"] = _tenant(client, world, "川一", "unit1", 10, household_province="51")
    return world


def test_figures_per_site_and_building_with_small_cells_suppressed(client: TestClient, village: World) -> None:
    feed = client.get("/v1/statistics", headers=village.auth("admin_a"), params={"site_id": village.ids["site_a"]}).json()
    site, building = feed["items"]
    assert (site["building_id"], building["building_id"]) == (None, village.ids["building_a"])
    # world's tenant1 and tenant2 (arrived yesterday), plus seven: nine residents in two occupied units;
    # eight arrived in the last seven days (the Sichuan tenant ten days ago).
    assert (site["units"], site["occupied_units"], site["residents"], site["arrivals"]) == (2, 2, 9, 8)
    assert site["residents_by_province"] == {"44": 6, "51": "<5", "unknown": "<5"}
    assert site["registrations_overdue"] == "<5"  # the Sichuan tenant: 10 days in, occupation, sex, birth date missing
    assert site["departures"] == 0
    per_day = {d["day"]: d["arrivals"] for d in site["per_day"]}
    assert len(per_day) == 7 and sorted(v for v in per_day.values() if v) == [8]  # all eight arrived yesterday; building rows have none
    assert building["per_day"] is None
    sign_in(client, village.tokens["admin_a"])
    page = client.get("/console/statistics", params={"site_id": village.ids["site_a"]})
    assert page.status_code == 200 and "广东省 6" in page.text and "四川省 &lt;5" in page.text


def test_the_feed_pages_and_answers_304_until_the_figures_change(client: TestClient, village: World) -> None:
    district = village.auth("district")
    first = client.get("/v1/statistics", headers=district, params={"page_size": 2})
    body = first.json()
    assert body["total"] == 4 and body["next_page"] == 2 and len(body["items"]) == 2  # site A + its building, site B + its building
    second = client.get("/v1/statistics", headers=district, params={"page_size": 2, "page": 2}).json()
    assert second["next_page"] is None and [r["site_id"] for r in second["items"]] == [village.ids["site_b"]] * 2
    etag = first.headers["etag"]
    assert client.get("/v1/statistics", headers={**district, "If-None-Match": etag}, params={"page_size": 2}).status_code == 304
    _tenant(client, village, "新人", "unit2", 0)
    again = client.get("/v1/statistics", headers={**district, "If-None-Match": etag}, params={"page_size": 2})
    assert again.status_code == 200 and again.headers["etag"] != etag


def _export(client: TestClient, world: World, file_format: str, purpose: str = "派出所租住登记核查") -> object:
    form = client.get("/console/registrations")
    today = date.today()
    return client.post("/console/registrations/export", data={
        "csrf": csrf_of(form.text), "site_id": world.ids["site_a"], "purpose": purpose, "format": file_format,
        "from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat(),
    })


def test_the_export_holds_exactly_the_tenancies_and_fields_and_is_audited(client: TestClient, village: World) -> None:
    sign_in(client, village.tokens["district"])
    answer = _export(client, village, "csv")
    assert answer.status_code == 200 and answer.headers["content-disposition"].startswith("attachment")  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))  # type: ignore[attr-defined]
    assert rows[0] == ["姓名", "性别", "年龄", "户籍省份", "户籍地址", "职业", "工作单位", "楼栋", "房号", "入住日期", "退租日期"]
    by_name = {r[0]: r for r in rows[1:]}
    assert sorted(by_name) == sorted(["Tenant 1", "Tenant 2", "川一", *(f"粤{n}" for n in range(6))])
    age = date.today().year - 1990 - ((date.today().month, date.today().day) < (5, 1))
    # household_address and workplace are not collected by this site: empty; a formula-like value is quoted.
    assert by_name["粤0"][1:8] == ["male", str(age), "广东省", "", "'=cook", "", "Building 1"]
    assert by_name["川一"][1:4] == ["", "", "四川省"]
    events = client.get("/v1/audit/events", headers=village.auth("district"), params={"kind": "registration.exported"}).json()["events"]
    assert len(events) == 1 and events[0]["data"]["purpose"] == "派出所租住登记核查" and events[0]["data"]["rows"] == 9

    xlsx = _export(client, village, "xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active  # type: ignore[attr-defined]
    assert sheet is not None
    assert [[("" if c is None else str(c)) for c in row] for row in sheet.iter_rows(values_only=True)] == rows


def test_an_export_needs_a_purpose_and_an_admin(client: TestClient, village: World) -> None:
    sign_in(client, village.tokens["admin_a"])
    answer = _export(client, village, "csv", purpose="  ")
    assert answer.status_code == 422 and 'data-code="purpose_required"' in answer.text  # type: ignore[attr-defined]
    sign_in(client, village.tokens["admin_b"])
    assert _export(client, village, "csv").status_code == 404  # type: ignore[attr-defined]
    sign_in(client, village.tokens["owner1"])
    assert client.get("/console/registrations").status_code == 403
    events = client.get("/v1/audit/events", headers=village.auth("district"), params={"kind": "registration.exported"}).json()["events"]
    assert events == []


def test_daily_arrivals_for_the_chart_leave_small_days_out(client: TestClient, village: World) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    sign_in(client, village.tokens["admin_a"])
    daily = client.get("/console/statistics/daily.json", params={"from": (today - timedelta(days=10)).isoformat(), "to": today.isoformat()}).json()
    arrivals = dict(zip(daily["days"], daily["arrivals"], strict=True))
    # The Sichuan tenant's day (1 person) is "<5"; yesterday's 8 (six from Guangdong and the world's two
    # tenants) is hidden too, else 9 arrivals on the statistics page minus 8 would give the 1 away.
    assert len(arrivals) == 11 and sum(1 for v in arrivals.values() if v is None) == 2
    assert {v for v in arrivals.values() if v is not None} == {0}
    sign_in(client, village.tokens["owner1"])
    assert client.get("/console/statistics/daily.json").status_code == 403
