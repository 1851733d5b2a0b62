"""A landlord adds and authorises a tenant, shows the pass QR (it decodes to a pass the lock accepts),
ends the tenancy; another landlord's unit stays out of reach by URL."""

from __future__ import annotations

import re
from datetime import date, timedelta

from fastapi.testclient import TestClient

from idsvc.passes import qr
from tests.console.conftest import csrf_of, sign_in
from tests.world import World


def test_landlord_registers_authorises_and_shows_the_pass(client: TestClient, world: World) -> None:
    unit = world.ids["unit1"]
    sign_in(client, world.tokens["owner1"])
    page = client.get(f"/console/units/{unit}")
    csrf = csrf_of(page.text)
    step1 = client.post(f"/console/units/{unit}/people", data={"csrf": csrf, "display_name": "租客赵", "phone": ""}, follow_redirects=False)
    assert step1.status_code == 303
    person = int(re.search(r"person=(\d+)", step1.headers["location"]).group(1))  # type: ignore[union-attr]
    form = client.get(step1.headers["location"])
    assert 'id="authorise"' in form.text
    today = date.today()
    step2 = client.post(
        f"/console/units/{unit}/tenants",
        data={"csrf": csrf, "person_id": person, "valid_from": today.isoformat(), "valid_until": (today + timedelta(days=30)).isoformat()},
    )
    assert step2.status_code == 200 and "租客赵" in step2.text
    # The API sees the same tenancy.
    tenants = client.get(f"/v1/units/{unit}/tenants", headers=world.auth("owner1")).json()
    assert person in [t["person_id"] for t in tenants]

    issued = client.post(f"/console/people/{person}/passes", data={"csrf": csrf, "unit_id": unit})
    pass_id = int(re.search(r'data-pass="(\d+)"', issued.text).group(1))  # type: ignore[union-attr]
    picture = client.get(f"/console/passes/{pass_id}/qr.svg")
    assert picture.headers["content-type"].startswith("image/svg+xml")
    png = client.get(f"/v1/passes/{pass_id}/qr.png", headers=world.auth("owner1")).content
    assert qr.decode_image(png)[0].startswith("NH1:")

    ended = client.post(f"/console/units/{unit}/tenants/{person}/end", data={"csrf": csrf, "reason": "moved out"})
    assert ended.status_code == 200 and "租客赵" not in ended.text
    assert person not in [t["person_id"] for t in client.get(f"/v1/units/{unit}/tenants", headers=world.auth("owner1")).json()]


def test_an_unknown_date_order_is_a_clear_error_not_a_traceback(client: TestClient, world: World) -> None:
    unit = world.ids["unit1"]
    sign_in(client, world.tokens["owner1"])
    csrf = csrf_of(client.get(f"/console/units/{unit}").text)
    today = date.today()
    answer = client.post(
        f"/console/units/{unit}/tenants",
        data={"csrf": csrf, "person_id": world.ids["tenant1"], "valid_from": (today + timedelta(days=9)).isoformat(), "valid_until": today.isoformat()},
    )
    assert answer.status_code == 422 and 'data-code="invalid_input"' in answer.text


def test_another_landlords_unit_is_out_of_reach_by_url(client: TestClient, world: World) -> None:
    other = world.ids["unit2"]
    sign_in(client, world.tokens["owner1"])
    csrf = csrf_of(client.get(f"/console/units/{world.ids['unit1']}").text)
    for path in (f"/console/units/{other}", f"/console/units/{other}/sheet", f"/console/units/{other}/qr.svg"):
        assert client.get(path).status_code == 404, path
    attempt = client.post(f"/console/units/{other}/tenants/{world.ids['tenant2']}/end", data={"csrf": csrf, "reason": "x"})
    assert attempt.status_code == 404
    assert world.ids["tenant2"] in [t["person_id"] for t in client.get(f"/v1/units/{other}/tenants", headers=world.auth("owner2")).json()]


def test_forms_without_the_sessions_token_change_nothing(client: TestClient, world: World) -> None:
    unit = world.ids["unit1"]
    sign_in(client, world.tokens["owner1"])
    answer = client.post(f"/console/units/{unit}/tenants/{world.ids['tenant1']}/end", data={"csrf": "forged", "reason": "x"})
    assert answer.status_code == 403
    assert world.ids["tenant1"] in [t["person_id"] for t in client.get(f"/v1/units/{unit}/tenants", headers=world.auth("owner1")).json()]


def test_the_one_house_one_code_sheet_holds_the_unit_code(client: TestClient, world: World) -> None:
    unit = world.ids["unit1"]
    sign_in(client, world.tokens["owner1"])
    sheet = client.get(f"/console/units/{unit}/sheet")
    assert sheet.status_code == 200 and f"/console/units/{unit}/qr.svg" in sheet.text
    code = client.get(f"/v1/units/{unit}", headers=world.auth("owner1")).json()["code"]
    assert code in sheet.text


def test_the_landlord_sees_entries_at_their_own_doors_only(client: TestClient, world: World) -> None:
    import time

    verify = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": "NH1:nope"})
    assert verify.json()["allow"] is False
    sign_in(client, world.tokens["owner1"])
    for _ in range(40):  # decisions reach the trail within a quarter of a second
        entries = client.get(f"/console/units/{world.ids['unit1']}").text.split('id="entries"', 1)[1].split("</ol>", 1)[0]
        if 'class="deny"' in entries:
            break
        time.sleep(0.05)
    assert "Flat 101" in entries and "拒绝" in entries
    sign_in(client, world.tokens["owner2"])
    other = client.get(f"/console/units/{world.ids['unit2']}").text.split('id="entries"', 1)[1].split("</ol>", 1)[0]
    assert 'class="deny"' not in other and "Flat 101" not in other


def test_the_landlord_registers_the_fields_the_site_collects(client: TestClient, world: World) -> None:
    settings = {"registration": {"fields": ["sex", "household_province", "occupation"]}}
    assert client.patch(f"/v1/sites/{world.ids['site_a']}", headers=world.auth("admin_a"), json={"settings": settings}).status_code == 200
    unit = world.ids["unit1"]
    sign_in(client, world.tokens["owner1"])
    page = client.get(f"/console/units/{unit}")
    assert 'name="household_province"' in page.text and 'name="occupation"' in page.text and 'name="workplace"' not in page.text
    csrf = csrf_of(page.text)
    form = {"csrf": csrf, "display_name": "租客钱", "sex": "female", "household_province": "51", "occupation": "厨师", "workplace": "", "birth_date": ""}
    answer = client.post(f"/console/units/{unit}/people", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    person = int(re.search(r"person=(\d+)", answer.headers["location"]).group(1))  # type: ignore[union-attr]
    shown = client.get(f"/v1/people/{person}", headers=world.auth("admin_a")).json()
    assert (shown["sex"], shown["household_province"], shown["occupation"], shown["workplace"]) == ("female", "51", "厨师", None)
    # A field the site does not collect is refused, as through the API, even from a forged form.
    forged = client.post(f"/console/units/{unit}/people", data={**form, "display_name": "x", "workplace": "工厂"})
    api = client.post("/v1/people", headers=world.auth("owner1"), json={"site_id": world.ids["site_a"], "display_name": "x", "kind": "tenant", "workplace": "工厂"})
    assert forged.status_code == api.status_code and 400 <= api.status_code < 500
    assert f'data-code="{api.json()["error"]["code"]}"' in forged.text
