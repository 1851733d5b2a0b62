"""The screen's live stream from a real service process: a lock's denied verify is on the stream within
2 s, and an alarm acknowledged on the console goes out as an ``alarm`` event."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from idsvc.alarms import service as alarms
from idsvc.alarms.service import Signal
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from tests.bridge.conftest import ServiceProcess
from tests.console.conftest import CSRF
from tests.world import World, build_world


def _signed_in(service: ServiceProcess, token: str) -> httpx.Client:
    client = httpx.Client(base_url=service.url, timeout=10)
    form = client.get("/console/login")
    csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    assert client.post("/console/login", data={"api_key": token, "csrf": csrf}).status_code == 303
    return client


class StreamReader(threading.Thread):
    """Reads /console/events in the background and keeps (event, data, arrival time)."""

    def __init__(self, client: httpx.Client, site_id: int, after: int | None = None) -> None:
        super().__init__(daemon=True)
        self.client, self.site_id, self.after = client, site_id, after
        self.events: list[tuple[str, dict[str, object], float]] = []
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:  # the service stopped at the end of the test
            pass

    def _read(self) -> None:
        query = f"site_id={self.site_id}" + (f"&after={self.after}" if self.after is not None else "")
        with self.client.stream("GET", f"/console/events?{query}", timeout=None) as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    self.events.append((event, json.loads(line.split(":", 1)[1]), time.monotonic()))
                    if event == "ready":
                        self.ready.set()

    def wait_for(self, kind: str, timeout: float) -> tuple[dict[str, object], float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event, data, at in self.events:
                if event == kind:
                    return data, at
            time.sleep(0.02)
        raise AssertionError(f"no {kind} event within {timeout} s; got {[e for e, _, _ in self.events]}")


def test_a_denied_verify_is_on_the_screen_within_two_seconds(served: tuple[World, ServiceProcess]) -> None:
    world, service = served
    console = _signed_in(service, world.tokens["admin_a"])
    reader = StreamReader(console, world.ids["site_a"])
    reader.start()
    assert reader.ready.wait(10)
    time.sleep(0.6)  # the tail has read where the trail ends
    sent = time.monotonic()
    answer = httpx.post(f"{service.url}/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": "NH1:not-a-pass"})
    assert answer.status_code == 200 and answer.json()["allow"] is False
    data, arrived = reader.wait_for("door", 5)
    assert arrived - sent < 2.0, f"the deny took {arrived - sent:.2f} s to reach the screen"
    assert data["door_id"] == world.ids["door1"] and data["outcome"] == "deny" and data["reasons"] == answer.json()["reasons"]
    assert data["door_name"] == "Flat 101" and data["reasons_text"]


def test_other_sites_events_do_not_reach_the_screen_and_others_may_not_open_it(served: tuple[World, ServiceProcess], ctx: AppContext) -> None:
    world, service = served
    assert _signed_in(service, world.tokens["admin_b"]).get(f"/console/events?site_id={world.ids['site_a']}").status_code == 404
    assert _signed_in(service, world.tokens["owner1"]).get(f"/console/events?site_id={world.ids['site_a']}").status_code == 403
    console = _signed_in(service, world.tokens["admin_b"])
    reader = StreamReader(console, world.ids["site_b"])
    reader.start()
    assert reader.ready.wait(10)
    time.sleep(0.6)
    httpx.post(f"{service.url}/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": "NH1:x"})
    time.sleep(1.5)
    assert [e for e, _, _ in reader.events] == ["ready"]


def test_an_alarm_raised_and_acknowledged_goes_out_live(served: tuple[World, ServiceProcess], ctx: AppContext) -> None:
    world, service = served
    console = _signed_in(service, world.tokens["admin_a"])
    reader = StreamReader(console, world.ids["site_a"])
    reader.start()
    assert reader.ready.wait(10)
    with ctx.db.session() as s:  # what a bridge's door_forced event does (alarms/door_events.py)
        alarm, _ = alarms.raise_alarm(s, ctx.bus, Signal(source=f"door:{world.ids['door1']}", type="door_forced", at=utcnow(), site_id=world.ids["site_a"],
                                                         door_id=world.ids["door1"], unit_id=world.ids["unit1"]), "device:1")
        alarm_id = alarm.id
    # The service process is another node: it hears the notice only through Redis; on SQLite the screen's
    # own acknowledgement (same process) is what must stream.
    screen = console.get(f"/console/screen?site_id={world.ids['site_a']}")
    assert f'data-alarm="{alarm_id}"' in screen.text
    csrf = CSRF.search(screen.text).group(1)  # type: ignore[union-attr]
    assert console.post(f"/console/alarms/{alarm_id}/acknowledge", data={"csrf": csrf, "next": "/console/screen"}).status_code == 303
    data, _ = reader.wait_for("alarm", 5)
    assert data["alarm"]["id"] == alarm_id  # type: ignore[index]
    state, _ = reader.wait_for("doorstate", 5)
    assert state == {**state, "id": world.ids["door1"], "state": "forced"}


def test_events_between_the_page_and_the_stream_are_not_lost(served: tuple[World, ServiceProcess]) -> None:
    """The screen passes the newest event it shows; a denial made before the stream opened still arrives, once."""
    world, service = served
    lock = world.auth("device1")
    first = httpx.post(f"{service.url}/v1/device/verify", headers=lock, json={"door_id": world.ids["door1"], "qr_text": "NH1:first"})
    assert first.json()["allow"] is False
    console = _signed_in(service, world.tokens["admin_a"])
    deadline = time.monotonic() + 5
    after = 0
    while time.monotonic() < deadline and not after:  # the page, once the first decision is in the trail
        page = console.get(f"/console/screen?site_id={world.ids['site_a']}").text
        after = int(page.split('data-after="', 1)[1].split('"', 1)[0])
        time.sleep(0.05)
    assert after > 0
    httpx.post(f"{service.url}/v1/device/verify", headers=lock, json={"door_id": world.ids["door1"], "qr_text": "NH1:second"})
    time.sleep(0.6)  # in the trail before the stream opens
    reader = StreamReader(console, world.ids["site_a"], after=after)
    reader.start()
    reader.wait_for("door", 5)
    time.sleep(1.0)
    doors = [data for event, data, _ in reader.events if event == "door"]
    assert len(doors) == 1 and int(doors[0]["seq"]) > after  # type: ignore[call-overload]


def test_a_forced_door_uploaded_by_a_bridge_shows_in_the_readers_words(served: tuple[World, ServiceProcess]) -> None:
    world, service = served
    console = _signed_in(service, world.tokens["admin_a"])
    reader = StreamReader(console, world.ids["site_a"])
    reader.start()
    assert reader.ready.wait(10)
    time.sleep(0.6)
    event = {"event_id": "lock-101-000001", "kind": "door_forced", "at": "2026-12-01T04:40:12+08:00", "door_id": world.ids["door1"], "data": {}}
    answer = httpx.post(f"{service.url}/v1/device/events", headers=world.auth("device1"), json={"events": [event]})
    assert answer.status_code == 200 and answer.json()["stored"] == ["lock-101-000001"], answer.text
    data, _ = reader.wait_for("door", 5)
    assert (data["outcome"], data["kind"], data["kind_text"], data["door_id"]) == ("device", "device.door_forced", "强行开门", world.ids["door1"])


def test_revoking_the_key_closes_an_open_stream(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process server, so the re-check interval can be short; the stream keeps flowing until then."""
    import uvicorn

    from idsvc.app import create_app
    from idsvc.auth import service as keys
    from idsvc.auth.principal import OPERATOR
    from idsvc.console import pages
    from tests.bridge.conftest import free_port

    monkeypatch.setattr(pages, "RECHECK_S", 0.5)
    world = build_world(ctx)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        console = httpx.Client(base_url=url, timeout=10)
        form = console.get("/console/login")
        assert console.post("/console/login", data={"api_key": world.tokens["admin_a"], "csrf": CSRF.search(form.text).group(1)}).status_code == 303  # type: ignore[union-attr]
        reader = StreamReader(console, world.ids["site_a"])
        reader.start()
        assert reader.ready.wait(10)
        with ctx.db.session() as s:
            keys.revoke_key(s, OPERATOR, keys.resolve(s, world.tokens["admin_a"]).key_id or 0)
        reader.join(5)
        assert not reader.is_alive(), "the stream stayed open after its key was revoked"
    finally:
        server.should_exit = True
        thread.join(10)
