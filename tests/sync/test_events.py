"""The feed's event stream over a real HTTP server: a bridge learns of a change without polling."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from idsvc.app import create_app
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.registry import people, schemas
from idsvc.registry.models import PersonKind
from idsvc.revocation import service as revocation
from idsvc.revocation.service import Verb
from idsvc.sync.events import versions
from tests.revocation.nodes import free_port
from tests.world import World


@pytest.fixture
def live_url(ctx: AppContext) -> Iterator[str]:
    """This test's app behind uvicorn in a thread (streams need a real server, not the test client)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):  # bounded: 10 s
        if server.started:
            break
        thread.join(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


def test_a_revocation_is_announced_on_the_stream(ctx: AppContext, world: World, live_url: str) -> None:
    url = f"{live_url}/v1/sync/sites/{world.ids['site_a']}/events"
    with httpx.Client(timeout=httpx.Timeout(10.0)) as http, http.stream("GET", url, headers=world.auth("device1")) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        announced = versions(stream.iter_lines())
        first = next(announced)
        with ctx.db.session() as s:
            revocation.change_grant(s, OPERATOR, world.ids["grant1"], Verb.revoke, "moved out")
        assert next(announced) == first + 1
        with ctx.db.session() as s:  # site b's change takes a version but is not announced here
            people.create_person(s, OPERATOR, schemas.PersonIn(site_id=world.ids["site_b"], display_name="Visitor", kind=PersonKind.visitor))
        with ctx.db.session() as s:
            revocation.change_person(s, OPERATOR, world.ids["tenant1"], Verb.suspend, "check")
        assert next(announced) == first + 3


def test_the_stream_is_scoped_like_the_feed(world: World, live_url: str) -> None:
    answer = httpx.get(f"{live_url}/v1/sync/sites/{world.ids['site_a']}/events", headers=world.auth("admin_b"), timeout=5)
    assert answer.status_code == 404
