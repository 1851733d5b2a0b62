"""The console's user stories in a real browser (Playwright for Python driving Debian's Chromium)
against a real ``idsvc`` process: each role signs in; a landlord adds and authorises a tenant and the
pass QR on screen decodes; an admin revokes it and the lock's next verify shows on the staff screen as
a denial within 2 s; another landlord's unit is refused by URL; the officer's export holds exactly
the expected rows; every main page in each language is screenshotted (artefacts) and checked.

Skips when Chromium or Playwright is missing, except under CI=true, where that is a failure
(.ci/run installs Chromium). Screenshots go to $IDSVC_TEST_ARTIFACTS (default test-artifacts/)/console.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from idsvc.passes import qr
from tests.bridge.conftest import ServiceProcess
from tests.conftest import REPO_ROOT
from tests.prerequisites import missing
from tests.world import World

CHROMIUM = "/usr/bin/chromium"
ARTEFACTS = Path(os.environ.get("IDSVC_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "console"


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[test]')")
    if not shutil.which(CHROMIUM):
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _playwright()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def _page(browser: Any, service: ServiceProcess, token: str | None, language: str = "zh_CN", phone: bool = False) -> Any:
    viewport = {"width": 390, "height": 844} if phone else {"width": 1400, "height": 900}
    context = browser.new_context(base_url=service.url, viewport=viewport, accept_downloads=True)
    context.add_cookies([{"name": "idsvc_lang", "value": language, "url": service.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.js_errors = errors
    if token is not None:
        page.goto("/console/login")
        page.fill("input[name=api_key]", token)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle" if not phone else "load")
    return page


def _check_rendered(page: Any, name: str) -> None:
    """Saved as an artefact; a page that rendered has no missing-translation marker and is not blank."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert "⟦" not in page.content(), f"{name}: a missing translation"
    picture = Image.open(path).convert("L")
    low, high = picture.getextrema()
    assert high - low > 60 and len(picture.getcolors(1 << 16) or []) > 8, f"{name}: the screenshot looks blank"


def test_each_role_signs_in_to_its_page_in_each_language(browser: Any, served: tuple[World, ServiceProcess]) -> None:
    world, service = served
    landing = {"district": ("/console/statistics", "stats-table"), "admin_a": ("/console/screen", "door-table"), "owner1": ("/console/units", None)}
    for language in ("zh_CN", "en"):
        for role, (path, element) in landing.items():
            page = _page(browser, service, world.tokens[role], language, phone=role == "owner1")
            assert page.url.endswith(path) or path in page.url, (role, page.url)
            if element:
                assert page.locator(f"#{element}").is_visible()
            if role == "district":
                page.wait_for_selector("#daily-chart[data-ready='1'] canvas", timeout=5000)
            if role == "admin_a":
                page.wait_for_selector("#map[data-ready='1']", timeout=5000)
                assert int(page.get_attribute("#map", "data-markers")) == 3  # door1, door2 and the entrance of site A
                page.wait_for_selector("#live.on", timeout=5000)
            _check_rendered(page, f"{path.strip('/').replace('/', '-')}-{role}-{language}")
            if role == "admin_a":  # the other main pages of staff, in this language too
                for name, other in (("door", f"/console/doors/{world.ids['door1']}"), ("unit", f"/console/units/{world.ids['unit1']}"),
                                    ("people", "/console/people"), ("audit", "/console/audit"), ("manage", f"/console/sites/{world.ids['site_a']}/manage"),
                                    ("inspect", "/console/passes/inspect"), ("export", "/console/registrations")):
                    page.goto(other)
                    _check_rendered(page, f"console-{name}-{role}-{language}")
            assert page.js_errors == [], page.js_errors
            page.context.close()
        tenant = _page(browser, service, world.tokens["tenant1"], language)
        assert tenant.locator("[data-code='forbidden_role']").is_visible()
        tenant.context.close()
    login = _page(browser, service, None, "en")
    login.goto("/console/login")
    _check_rendered(login, "login-en")
    login.context.close()


def test_landlord_adds_a_tenant_the_qr_decodes_and_a_revocation_shows_live(browser: Any, served: tuple[World, ServiceProcess]) -> None:
    world, service = served
    phone = _page(browser, service, world.tokens["owner1"], phone=True)
    phone.goto(f"/console/units/{world.ids['unit1']}")
    phone.fill("#register input[name=display_name]", "租客赵")
    phone.click("#register button[name=register]")
    phone.click("#authorise button[name=authorise]")
    tenant = phone.locator(".tenant", has_text="租客赵")
    tenant.locator("button[name=issue]").click()
    qr_image = phone.locator(".tenant", has_text="租客赵").locator("figure.qr img")
    qr_image.wait_for()
    _check_rendered(phone, f"console-units-{world.ids['unit1']}-owner1-zh_CN")
    decoded = qr.decode_image(qr_image.screenshot())
    assert decoded and decoded[0].startswith("NH1:"), decoded
    pass_text = decoded[0]
    lock = world.auth("device1")
    verify = {"door_id": world.ids["door1"], "qr_text": pass_text}
    assert httpx.post(f"{service.url}/v1/device/verify", headers=lock, json=verify).json()["allow"] is True

    # Staff: the screen open in one tab, the unit in another; revoke, then the lock tries again.
    screen = _page(browser, service, world.tokens["admin_a"])
    screen.wait_for_selector("#live.on", timeout=5000)
    staff = screen.context.new_page()
    staff.goto(f"/console/units/{world.ids['unit1']}")
    figure = staff.locator(".tenant", has_text="租客赵").locator("figure.qr")
    figure.locator("input[name=reason]").fill("lost phone")
    figure.locator("button[name=revoke]").click()
    staff.wait_for_load_state("load")
    sent = time.monotonic()
    answer = httpx.post(f"{service.url}/v1/device/verify", headers=lock, json=verify).json()
    assert answer["allow"] is False and "pass_revoked" in answer["reasons"], answer
    screen.wait_for_selector("#stream li.deny.fresh", timeout=2000)
    assert time.monotonic() - sent < 2.0
    assert "通行码已吊销" in screen.locator("#stream li.deny.fresh").first.inner_text()  # pass_revoked, in the reader's words
    assert screen.locator("[data-counter='denials_today']").inner_text() == "1"
    _check_rendered(screen, "console-screen-live-deny-zh_CN")
    phone.context.close()
    screen.context.close()


def test_a_landlord_cannot_reach_another_landlords_unit_by_url(browser: Any, served: tuple[World, ServiceProcess]) -> None:
    world, service = served
    page = _page(browser, service, world.tokens["owner1"], phone=True)
    answer = page.goto(f"/console/units/{world.ids['unit2']}")
    assert answer.status == 404 and page.locator("[data-code='unit_not_found']").is_visible()
    assert "Tenant 2" not in page.content()
    page.context.close()


def test_the_officers_export_holds_exactly_the_expected_rows(browser: Any, served: tuple[World, ServiceProcess]) -> None:
    world, service = served
    settings = {"registration": {"fields": ["household_province", "occupation"]}}
    admin = world.auth("admin_a")
    assert httpx.patch(f"{service.url}/v1/sites/{world.ids['site_a']}", headers=admin, json={"settings": settings}).status_code == 200
    assert httpx.patch(f"{service.url}/v1/people/{world.ids['tenant1']}", headers=admin, json={"household_province": "44", "occupation": "cook"}).status_code == 200
    page = _page(browser, service, world.tokens["district"], "en")
    page.goto("/console/registrations")
    page.select_option("select[name=site_id]", str(world.ids["site_a"]))
    page.fill("input[name=from]", (date.today() - timedelta(days=7)).isoformat())
    page.fill("input[name=to]", date.today().isoformat())
    page.fill("input[name=purpose]", "Police station request 2026-118")
    page.select_option("select[name=format]", "csv")
    with page.expect_download() as download_info:
        page.click("button[name=export]")
    rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_bytes().decode("utf-8-sig"))))
    assert rows[0][:3] == ["Name", "Sex", "Age"] and len(rows[0]) == 11
    assert sorted((r[0], r[3], r[5], r[8]) for r in rows[1:]) == [("Tenant 1", "广东省", "cook", "101"), ("Tenant 2", "", "", "102")]
    page.goto("/console/statistics")
    _check_rendered(page, "console-statistics-district-en-after-export")
    page.context.close()


def test_an_admin_places_a_door_by_clicking_the_plan(browser: Any, served: tuple[World, ServiceProcess]) -> None:
    world, service = served
    page = _page(browser, service, world.tokens["admin_a"], "en")
    page.goto(f"/console/sites/{world.ids['site_a']}/plan/edit")
    page.wait_for_selector("#plan-editor[data-ready='1']", timeout=5000)
    page.select_option("select[name=door_id]", str(world.ids["door2"]))
    box = page.locator("#plan-editor").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    x, y = float(page.input_value("input[name=x]")), float(page.input_value("input[name=y]"))
    assert 0 < x < 1 and 0 < y < 1
    page.click("button[name=place]")
    page.wait_for_load_state("load")
    placed = page.request.get(f"/console/sites/{world.ids['site_a']}/doors.json").json()
    assert {(d["x"], d["y"]) for d in placed["doors"] if d["id"] == world.ids["door2"]} == {(round(x, 4), round(y, 4))}
    _check_rendered(page, "console-plan-edit-admin_a-en")
    assert page.js_errors == [], page.js_errors
    page.context.close()
