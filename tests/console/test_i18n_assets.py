"""The two catalogues hold the same keys and every key the templates use; pages render without a
missing-translation marker in either language; every served asset matches its pinned sha256."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from idsvc.console import assets
from idsvc.console.i18n import LANGUAGES, MISSING, Translator, catalogue
from tests.console.conftest import sign_in
from tests.world import World

TEMPLATES = Path(assets.__file__).parent / "templates"
LITERAL_KEY = re.compile(r"""t\(\s*'([a-z_.0-9]+[a-z_0-9])'""")
DYNAMIC_PREFIX = re.compile(r"""t\(\s*'([a-z_.0-9]+\.)'\s*~""")


def test_both_catalogues_hold_the_same_keys() -> None:
    zh, en = catalogue("zh_CN"), catalogue("en")
    assert set(zh) ^ set(en) == set(), "keys in one language only"
    assert all(v.strip() for v in [*zh.values(), *en.values()])


def test_every_key_a_template_names_is_in_the_catalogues() -> None:
    used = {key for path in TEMPLATES.glob("*.html") for key in LITERAL_KEY.findall(path.read_text())}
    assert used and used - set(catalogue("en")) == set()
    prefixes = {p for path in TEMPLATES.glob("*.html") for p in DYNAMIC_PREFIX.findall(path.read_text())}
    for prefix in prefixes:  # door_state., counter., role. ...: each has entries
        assert any(k.startswith(prefix) for k in catalogue("en")), prefix


def test_a_missing_key_shows_its_marker() -> None:
    assert Translator("en")("no.such.key") == MISSING.format(key="no.such.key")


def test_dates_in_the_sites_zone_and_numbers_per_locale() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)
    assert Translator("zh_CN", "Asia/Shanghai").datetime(at) == "2026年12月2日 00:30:00"
    assert Translator("en", "Europe/London").datetime(at).startswith("Dec 1, 2026, 4:30:00")
    assert Translator("zh_CN").number(1234567) == "1,234,567"


@pytest.mark.parametrize("language", LANGUAGES)
def test_pages_render_fully_translated(client: TestClient, world: World, language: str) -> None:
    client.cookies.set("idsvc_lang", language)
    sign_in(client, world.tokens["admin_a"])
    client.cookies.set("idsvc_lang", language)
    pages = [f"/console/screen?site_id={world.ids['site_a']}", f"/console/doors/{world.ids['door1']}", "/console/units", f"/console/units/{world.ids['unit1']}",
             f"/console/units/{world.ids['unit1']}/sheet", "/console/login"]
    for page in pages:
        html = client.get(page).text
        assert "⟦" not in html, page
        assert ("社区门禁控制台" in html) == (language == "zh_CN"), page


def test_the_language_switch_sets_a_cookie_and_returns(client: TestClient) -> None:
    answer = client.get("/console/lang/en?next=/console/login", follow_redirects=False)
    assert answer.headers["location"] == "/console/login" and "idsvc_lang=en" in answer.headers["set-cookie"]
    assert "Access console" in client.get("/console/login").text


def test_every_served_asset_matches_its_pin_and_has_a_licence() -> None:
    listed = assets.manifest()
    on_disk = {str(p.relative_to(assets.STATIC_DIR)) for p in assets.STATIC_DIR.rglob("*") if p.is_file() and p.name != "MANIFEST.json"}
    assert on_disk == set(listed), "a static file not in the manifest (or the reverse)"
    for name, entry in listed.items():
        assert hashlib.sha256((assets.STATIC_DIR / name).read_bytes()).hexdigest() == entry["sha256"], name
        assert entry["licence"]
        if "licence_file" in entry:
            assert (assets.STATIC_DIR / entry["licence_file"]).is_file()


def test_only_listed_assets_are_served(client: TestClient) -> None:
    assert client.get("/console/static/console.js").status_code == 200
    assert client.get("/console/static/MANIFEST.json").status_code == 404
    assert client.get("/console/static/../pages.py").status_code == 404
    etag = client.get("/console/static/vendor/leaflet.js").headers["etag"]
    assert client.get("/console/static/vendor/leaflet.js", headers={"If-None-Match": etag}).status_code == 304


def test_page_weight_of_the_screen(client: TestClient, world: World) -> None:
    """The screen's own weight stays small: HTML + console.js/css + Leaflet under 250 kB uncompressed."""
    sign_in(client, world.tokens["admin_a"])
    html = client.get(f"/console/screen?site_id={world.ids['site_a']}").text
    weight = len(html.encode()) + sum(len(client.get(src).content) for src in re.findall(r'(?:src|href)="(/console/static/[^"]+)"', html))
    assert weight < 250_000, weight


def test_every_value_a_page_names_through_a_prefix_has_its_text() -> None:
    """Keys built from a value (``'door_state.' ~ d.state``): every value of each enum has its entry in both languages."""
    from idsvc.alarms.models import Severity
    from idsvc.auth.models import Role
    from idsvc.console import screen
    from idsvc.privacy import registrations
    from idsvc.registry.models import DoorKind, FaceMode, PersonKind, Status, UnitKind
    from idsvc.revocation.service import Verb

    values = {
        "door_state": screen.DOOR_STATES, "door_kind": [k.value for k in DoorKind], "unit_kind": [k.value for k in UnitKind],
        "status": [s.value for s in Status], "face_mode": [m.value for m in FaceMode], "severity": [s.value for s in Severity],
        "role": [r.value for r in Role], "person_kind": [k.value for k in PersonKind], "verb": [v.value for v in Verb], "lang": LANGUAGES,
        "export.column": registrations.COLUMNS, "event": ("allow", "deny"),
        "counter": ("entries_today", "denials_today", "fever_alarms", "forced_doors", "offline_devices", "occupied_units", "residents"),
    }
    for language in LANGUAGES:
        missing = [f"{prefix}.{value}" for prefix, names in values.items() for value in names if f"{prefix}.{value}" not in catalogue(language)]
        assert missing == [], (language, missing)
