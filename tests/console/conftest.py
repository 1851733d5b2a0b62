"""Console test helpers: sign in through the real form, as a browser would."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

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
