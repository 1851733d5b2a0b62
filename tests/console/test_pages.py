"""Every console page with every role gets the status the API gives the same key for the same rows;
sign-in, sign-out, CSRF and the security headers."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from idsvc.auth import service as keys
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from tests.console.conftest import csrf_of, sign_in
from tests.world import World

ROLES = ("district", "admin_a", "admin_b", "owner1", "owner2", "tenant1", "device1")


def pages(w: World) -> list[tuple[str, str]]:
    """(console page, the API call that reads the same rows under the same rule)."""
    site, door, unit = w.ids["site_a"], w.ids["door1"], w.ids["unit1"]
    return [
        (f"/console/screen?site_id={site}", f"/v1/sites/{site}/registrations/overdue"),
        (f"/console/sites/{site}/doors.json", f"/v1/sites/{site}/registrations/overdue"),
        (f"/console/sites/{site}/plan", f"/v1/sites/{site}/registrations/overdue"),
        (f"/console/sites/{site}/doors", f"/v1/sites/{site}/registrations/overdue"),
        (f"/console/sites/{site}/plan/edit", f"/v1/sites/{site}/registrations/overdue"),
        (f"/console/doors/{door}", f"/v1/doors/{door}"),
        ("/console/units", "/v1/units"),
        ("/console/statistics", "/v1/statistics"),
        (f"/console/statistics?site_id={site}", f"/v1/statistics?site_id={site}"),
        ("/console/registrations", "/v1/statistics"),
        ("/console/audit", "/v1/audit/events"),
        (f"/console/audit?door_id={door}", f"/v1/audit/events?door_id={door}"),
        ("/console/audit.csv", "/v1/audit/events.csv"),
        (f"/console/units/{unit}", f"/v1/units/{unit}/tenants"),
        (f"/console/units/{unit}/sheet", f"/v1/units/{unit}/tenants"),
        (f"/console/sites/{site}/manage", f"/v1/sites/{site}/registrations/overdue"),
        (f"/console/alarms/table?site_id={site}", f"/v1/sites/{site}/registrations/overdue"),
        (f"/console/statistics/daily.json?site_id={site}", f"/v1/statistics?site_id={site}"),
    ]


def test_every_page_answers_every_role_as_the_api_does(client: TestClient, world: World) -> None:
    checked = 0
    for role in ROLES:
        sign_in(client, world.tokens[role])
        for page, api in pages(world):
            expected = client.get(api, headers=world.auth(role)).status_code
            got = client.get(page, follow_redirects=False)
            assert got.status_code == expected, f"{role} {page}: console {got.status_code}, API {api} {expected}"
            checked += expected == 200
    assert checked >= 10  # the matrix is not all refusals: admins and owners do see pages


def test_each_role_lands_on_its_own_first_page(client: TestClient, world: World) -> None:
    landing = {"district": "/console/statistics", "admin_a": "/console/screen", "owner1": "/console/units"}
    for role, target in landing.items():
        sign_in(client, world.tokens[role])
        assert client.get("/console/", follow_redirects=False).headers["location"] == target
        assert client.get(target).status_code == 200
    for role in ("tenant1", "device1"):
        sign_in(client, world.tokens[role])
        answer = client.get("/console/")
        assert answer.status_code == 403 and 'data-code="forbidden_role"' in answer.text


def test_the_service_root_opens_the_console(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=True)
    assert answer.status_code == 200 and answer.url.path == "/console/login"


def test_pages_without_a_session_send_to_sign_in(client: TestClient, world: World) -> None:
    for page, _api in pages(world):
        answer = client.get(page, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next=/console/"), page


def test_a_wrong_key_is_refused_with_a_message_and_counted(client: TestClient, ctx: AppContext) -> None:
    form = client.get("/console/login")
    answer = client.post("/console/login", data={"api_key": "idsvc_nope", "csrf": csrf_of(form.text)})
    assert answer.status_code == 401 and "密钥无效" in answer.text
    assert "idsvc_console" not in answer.cookies
    assert ctx.kv.incr("authfail:testclient", 60) == 2  # the failure counted against the address, as for the API


def test_sign_in_needs_the_forms_own_token(client: TestClient, world: World) -> None:
    client.get("/console/login")
    answer = client.post("/console/login", data={"api_key": world.tokens["admin_a"], "csrf": "forged"})
    assert answer.status_code == 403 and 'data-code="csrf_failed"' in answer.text


def test_the_session_cookie_is_httponly_strict_and_holds_no_key(client: TestClient, world: World) -> None:
    form = client.get("/console/login")
    answer = client.post("/console/login", data={"api_key": world.tokens["admin_a"], "csrf": csrf_of(form.text)}, follow_redirects=False)
    header = answer.headers["set-cookie"].lower()
    assert "idsvc_console=" in header and "httponly" in header and "samesite=strict" in header
    assert world.tokens["admin_a"] not in answer.headers["set-cookie"]


def test_a_forged_or_tampered_cookie_is_no_session(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin_a"])
    cookie = client.cookies["idsvc_console"]
    client.cookies.set("idsvc_console", cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1])
    assert client.get("/console/screen", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_console_session(client: TestClient, ctx: AppContext, world: World) -> None:
    sign_in(client, world.tokens["admin_a"])
    assert client.get("/console/screen").status_code == 200
    with ctx.db.session() as s:
        key = keys.resolve(s, world.tokens["admin_a"])
        keys.revoke_key(s, OPERATOR, key.key_id or 0)
    ctx.principals.clear()  # what the revocation notice does on every node
    assert client.get("/console/screen", follow_redirects=False).status_code == 303


def test_sign_out_needs_the_csrf_token_and_ends_the_session_even_for_a_copied_cookie(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin_a"])
    copied = client.cookies["idsvc_console"]
    page = client.get("/console/screen")
    assert client.post("/console/logout", data={"csrf": "wrong"}).status_code == 403
    assert client.post("/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    assert client.get("/console/screen", follow_redirects=False).status_code == 303
    client.cookies.set("idsvc_console", copied)  # a copy taken before signing out
    assert client.get("/console/screen", follow_redirects=False).status_code == 303
    sign_in(client, world.tokens["admin_a"])  # a new session of the same key is unaffected
    assert client.get("/console/screen").status_code == 200


@pytest.mark.parametrize("path", ["/console/login", "/console/screen", "/console/static/console.js", "/console/nope-not-a-page"])
def test_security_headers(client: TestClient, world: World, path: str) -> None:
    sign_in(client, world.tokens["admin_a"])
    answer = client.get(path)
    if path.endswith("nope-not-a-page"):
        assert answer.status_code == 404 and 'data-code="not_found"' in answer.text  # a page, not the API's JSON
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"


def test_pages_hold_no_inline_script_or_style(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin_a"])
    for page, _api in pages(world)[:1] + [(f"/console/doors/{world.ids['door1']}", "")]:
        html = client.get(page).text
        assert "<script>" not in html and " style=" not in html and "<style" not in html and " onclick=" not in html


def test_sign_in_links_go_only_to_console_pages(client: TestClient, world: World) -> None:
    form = client.get("/console/login?next=https://evil.example/")
    answer = client.post("/console/login", data={"api_key": world.tokens["admin_a"], "csrf": csrf_of(form.text), "next": "//evil.example/"}, follow_redirects=False)
    assert answer.headers["location"] == "/console/"


def test_the_stream_shows_door_events_not_registry_changes(client: TestClient, world: World) -> None:
    """Registering devices writes device.created to the trail; the stream is for decisions and devices' own events."""
    sign_in(client, world.tokens["admin_a"])
    verify = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": "NH1:nope"})
    assert verify.json()["allow"] is False
    stream = ""
    for _ in range(40):  # decisions reach the trail in batches, within a quarter of a second
        html = client.get(f"/console/screen?site_id={world.ids['site_a']}").text
        stream = html.split('id="stream"', 1)[1].split("</ol>", 1)[0]
        if "<li" in stream:
            break
        time.sleep(0.05)
    assert "device.created" not in stream and stream.count("<li") == 1 and 'class="deny"' in stream


def test_sign_in_returns_to_the_page_asked_for_with_its_query(client: TestClient, world: World) -> None:
    from urllib.parse import parse_qs, urlsplit

    page = f"/console/screen?site_id={world.ids['site_a']}"
    location = client.get(page, follow_redirects=False).headers["location"]
    target = parse_qs(urlsplit(location).query)["next"][0]
    assert target == page
    form = client.get(location)
    answer = client.post("/console/login", data={"api_key": world.tokens["district"], "csrf": csrf_of(form.text), "next": target}, follow_redirects=False)
    assert answer.headers["location"] == page


def test_the_alarm_table_fragment_returns_its_forms_to_the_screen(client: TestClient, ctx: AppContext, world: World) -> None:
    from idsvc.alarms import service as alarms
    from idsvc.core.db import utcnow

    with ctx.db.session() as s:
        alarms.raise_alarm(s, ctx.bus, alarms.Signal(source="door:1", type="door_forced", at=utcnow(), site_id=world.ids["site_a"], door_id=world.ids["door1"]), "device:1")
    sign_in(client, world.tokens["admin_a"])
    screen_url = f"/console/screen?site_id={world.ids['site_a']}"
    fragment = client.get("/console/alarms/table", params={"site_id": world.ids["site_a"], "next": screen_url})
    assert fragment.status_code == 200 and "<html" not in fragment.text and "door_forced" not in fragment.text  # the type in the reader's words
    assert f'name="next" value="{screen_url}"' in fragment.text.replace("&amp;", "&")
    answer = client.post(fragment.text.split('action="', 1)[1].split('"', 1)[0], data={"csrf": csrf_of(fragment.text), "next": screen_url}, follow_redirects=False)
    assert answer.headers["location"] == screen_url


def test_doors_needing_attention_come_first_and_all_doors_have_a_page(client: TestClient, ctx: AppContext, world: World) -> None:
    from idsvc.alarms import service as alarms
    from idsvc.core.db import utcnow

    door2 = world.ids["door2"]
    with ctx.db.session() as s:
        alarms.raise_alarm(s, ctx.bus, alarms.Signal(source=f"door:{door2}", type="door_forced", at=utcnow(), site_id=world.ids["site_a"], door_id=door2), "device:2")
    sign_in(client, world.tokens["admin_a"])
    table = client.get(f"/console/screen?site_id={world.ids['site_a']}").text.split('id="door-table"', 1)[1]
    first_row = table.split("<tr data-door=", 2)[1]
    assert first_row.startswith(f'"{door2}"') and "state-forced" in first_row
    every = client.get(f"/console/sites/{world.ids['site_a']}/doors").text
    assert every.count("<tr data-door=") == 3


def test_a_pasted_key_with_spaces_signs_in(client: TestClient, world: World) -> None:
    form = client.get("/console/login")
    client.post("/console/login", data={"api_key": f"  {world.tokens['admin_a']}\n", "csrf": csrf_of(form.text)}, follow_redirects=False)
    assert client.get("/console/screen", follow_redirects=False).status_code == 200


def test_a_form_sent_after_the_session_ended_leads_to_sign_in_and_the_start_page(client: TestClient, world: World) -> None:
    answer = client.post(f"/console/units/{world.ids['unit1']}/tenants/{world.ids['tenant1']}/end", data={"csrf": "x", "reason": "x"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login?next=/console/"
