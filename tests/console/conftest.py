"""Console test helpers: sign in through the real form, as a browser would; a real service process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from idsvc.context import AppContext
from tests.bridge.conftest import ServiceProcess
from tests.world import World, build_world

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: TestClient, token: str) -> None:
    """Sign in with an API key (clearing any earlier session); asserts the console accepted it."""
    client.cookies.clear()
    form = client.get("/console/login")
    answer = client.post("/console/login", data={"api_key": token, "csrf": csrf_of(form.text), "next": "/console/"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


@pytest.fixture
def served(ctx: AppContext, tmp_path: Path) -> Iterator[tuple[World, ServiceProcess]]:
    """The test world, served by a real ``uvicorn`` process on the test database."""
    world = build_world(ctx)
    service = ServiceProcess(ctx, tmp_path)
    service.start()
    try:
        yield world, service
    finally:
        service.stop()
