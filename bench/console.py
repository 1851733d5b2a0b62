"""How fast the staff screen loads for a big site while the door stream runs.

    .venv/bin/python bench/console.py [--units 2000] [--rate 20] [--loads 10] [--database-url postgresql+psycopg://...]

Seeds a throw-away site through the service's own code (SQLite by default): ``--units`` flats in
buildings of 100, each with its door, a lock per door and a tenant; a day's door decisions already in
the trail (``--history``). Starts a real ``idsvc`` process (uvicorn), drives Debian's Chromium with
Playwright, and measures the screen from navigation to a drawn plan (every door marker on the map)
and an open live stream, ``--loads`` times:

- big site, while a simulated lock sends ``--rate`` verifies per second (each a denial on the stream);
- baseline, the same run: the demo-sized site (3 doors) with no stream load.

Also the server's time for the screen's HTML and its doors.json, and the page weight.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pass_verify import make_context
from idsvc.audit import service as audit
from idsvc.auth import service as keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.demo import seed_demo
from idsvc.registry import doors, people, schemas, sites, units
from idsvc.registry.models import DeviceKind, DoorKind, PersonKind
from tests.bridge.conftest import ServiceProcess

CHROMIUM = "/usr/bin/chromium"


def seed_big_site(ctx: AppContext, unit_count: int, history: int) -> dict[str, object]:
    now = utcnow()
    with ctx.db.session() as s:
        site = sites.create_site(s, OPERATOR, schemas.SiteIn(code="big-village", name="Big Village", timezone="Asia/Shanghai"))
        admin = keys.issue_key(s, OPERATOR, Role.site_admin, site_id=site.id, label="bench").token
    lock_token, lock_door, door_ids = "", 0, []
    for first in range(0, unit_count, 100):
        with ctx.db.session() as s:
            building = sites.create_building(s, OPERATOR, schemas.BuildingIn(site_id=site.id, code=f"b{first // 100}", name=f"Building {first // 100 + 1}"))
            doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site.id, building_id=building.id, code=f"b{first // 100}-main", name="main", kind=DoorKind.entrance))
            for n in range(first, min(first + 100, unit_count)):
                owner = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site.id, display_name=f"Owner {n}", kind=PersonKind.owner))
                unit = units.register_unit(s, OPERATOR, schemas.UnitIn(building_id=building.id, label=f"{n}", owner_id=owner.id))
                door = doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site.id, unit_id=unit.id, code=f"u{n}", name=f"Flat {n}", kind=DoorKind.unit_door))
                tenant = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site.id, display_name=f"Tenant {n}", kind=PersonKind.tenant))
                units.add_tenant(s, OPERATOR, unit.id, schemas.TenancyIn(person_id=tenant.id, valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=90)))
                door_ids.append(door.id)
            lock = doors.create_device(s, OPERATOR, schemas.DeviceIn(site_id=site.id, code=f"lock-{first}", name="lock", kind=DeviceKind.lock, door_ids=[door_ids[-1]]))
            if not lock_token:
                lock_token, lock_door = keys.issue_key(s, OPERATOR, Role.device, device_id=lock.id, label="bench lock").token, door_ids[-1]
        print(f"  seeded {min(first + 100, unit_count)} units", file=sys.stderr)
    with ctx.db.session() as s:  # a day's decisions so far, spread over the doors
        audit.append(s, *(
            audit.NewEvent(kind="decision", actor="device:1", at=now - timedelta(seconds=i * 2), site_id=site.id, door_id=door_ids[i % len(door_ids)],
                           data={"decision_id": uuid.uuid4().hex, "method": "qr", "allow": i % 7 != 0, "reasons": [] if i % 7 else ["pass_expired"]})
            for i in range(history)
        ))
    return {"site_id": site.id, "admin": admin, "lock": lock_token, "lock_door": lock_door}


class Stream(threading.Thread):
    """A lock asking ``rate`` times a second (garbage QR: a denial each, on the screen's stream)."""

    def __init__(self, url: str, token: str, door_id: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.door_id, self.rate = url, token, door_id, rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10) as client:
            next_at = time.monotonic()
            while not self.stop.is_set():
                client.post("/v1/device/verify", json={"door_id": self.door_id, "qr_text": "NH1:bench"})
                self.sent += 1
                next_at += 1 / self.rate
                time.sleep(max(0.0, next_at - time.monotonic()))


# Records, in the page, when the HTML was parsed, the plan drawn and the stream opened (ms since navigation).
MARKS = """
new MutationObserver(function () {
  var map = document.getElementById("map"), live = document.getElementById("live");
  window.__marks = window.__marks || {};
  if (map && map.dataset.ready && !window.__marks.map) { window.__marks.map = performance.now(); }
  if (live && live.classList.contains("on") && !window.__marks.live) { window.__marks.live = performance.now(); }
}).observe(document, { subtree: true, childList: true, attributes: true });
"""


def screen_loads(service: ServiceProcess, token: str, site_id: int, doors_expected: int, loads: int, phases: list[dict[str, float]] | None = None) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(base_url=service.url, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.add_init_script(MARKS)
        page.goto("/console/login")
        page.fill("input[name=api_key]", token)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        for i in range(loads + 1):
            started = time.perf_counter()
            page.goto(f"/console/screen?site_id={site_id}", wait_until="commit")
            page.wait_for_selector("#map[data-ready='1']", timeout=30_000)
            page.wait_for_selector("#live.on", timeout=30_000)
            elapsed = time.perf_counter() - started
            markers = int(page.get_attribute("#map", "data-markers"))
            assert markers == doors_expected, (markers, doors_expected)
            if i:  # the first load warms the browser's cache of Leaflet, as a staff screen's would be
                times.append(elapsed)
                if phases is not None:
                    phases.append(page.evaluate("""() => ({html: performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd,
                                                          map: window.__marks.map, live: window.__marks.live})"""))
        browser.close()
    return times


def server_times(service: ServiceProcess, token: str, site_id: int, rounds: int = 10) -> dict[str, float]:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        form = client.get("/console/login")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/console/login", data={"api_key": token, "csrf": csrf})
        out: dict[str, float] = {}
        for name, path in (("html", f"/console/screen?site_id={site_id}"), ("doors_json", f"/console/sites/{site_id}/doors.json")):
            took, size = [], 0
            for _ in range(rounds):
                started = time.perf_counter()
                answer = client.get(path)
                took.append(time.perf_counter() - started)
                size = len(answer.content)
            out[f"{name}_ms"] = statistics.median(took) * 1000
            out[f"{name}_kb"] = size / 1000
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0, help="door events per second while measuring")
    parser.add_argument("--history", type=int, default=20_000, help="decisions already in the trail today")
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = make_context(Path(tmp), args.database_url)
        started = time.perf_counter()
        demo = seed_demo(ctx)
        big = seed_big_site(ctx, args.units, args.history)
        print(f"seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        service = ServiceProcess(ctx, Path(tmp))
        service.start()
        try:
            small = screen_loads(service, demo["keys"]["site_admin"], demo["site_id"], 3, args.loads)  # type: ignore[index, arg-type]
            small_server = server_times(service, demo["keys"]["site_admin"], demo["site_id"])  # type: ignore[index, arg-type]
            stream = Stream(service.url, str(big["lock"]), int(big["lock_door"]), args.rate)  # type: ignore[call-overload]
            stream.start()
            time.sleep(2)
            began, sent_before = time.monotonic(), stream.sent
            phases: list[dict[str, float]] = []
            loads = screen_loads(service, str(big["admin"]), int(big["site_id"]), args.units + args.units // 100, args.loads, phases)  # type: ignore[call-overload]
            big_server = server_times(service, str(big["admin"]), int(big["site_id"]))  # type: ignore[call-overload]
            achieved = (stream.sent - sent_before) / (time.monotonic() - began)
            stream.stop.set()
        finally:
            service.stop()
            ctx.close()
    median, worst = statistics.median(loads), max(loads)
    baseline = statistics.median(small)
    print(f"screen load, {args.units} units ({args.units + args.units // 100} doors), {args.history} decisions today, {achieved:.1f} events/s streaming:")
    print(f"  median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms over {len(loads)} loads (navigation -> every door drawn, live stream open)")
    print("  in the page (ms after navigation, medians): HTML parsed {html:.0f}, plan drawn {map:.0f}, stream open {live:.0f}".format(
        **{k: statistics.median(p[k] for p in phases) for k in ("html", "map", "live")}))
    print(f"  baseline, demo site (3 doors), no stream: median {baseline * 1000:.0f} ms  -> ratio {median / baseline:.1f}x")
    print(f"  server: screen HTML {big_server['html_ms']:.0f} ms ({big_server['html_kb']:.0f} kB), doors.json {big_server['doors_json_ms']:.0f} ms "
          f"({big_server['doors_json_kb']:.0f} kB); demo site: HTML {small_server['html_ms']:.0f} ms, doors.json {small_server['doors_json_ms']:.0f} ms")
    print(f"  target: under 1 s -> {'met' if median < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
