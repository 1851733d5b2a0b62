"""Defects 2 and 10 of issue 11: request heads are bounded at the server, X-Forwarded-For is believed only from named proxies."""

from __future__ import annotations

import dataclasses
import socket
import time
from urllib.parse import urlsplit

import httpx

from idsvc.context import AppContext
from idsvc.core.http_server import MAX_HEAD_BYTES, MAX_HEADER_COUNT
from tests.reliability.served import served
from tests.world import World


def _raw(url: str, head: bytes, body: bytes = b"") -> tuple[bytes, float]:
    """Send a raw request (possibly huge); the answer's first bytes and how long it took."""
    parts = urlsplit(url)
    started = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        answer = sock.recv(65536)
    return answer, time.perf_counter() - started


def test_an_oversized_header_is_431_at_once_and_others_are_served(ctx: AppContext) -> None:
    with served(ctx) as url:
        huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * (20 * 1024 * 1024) + b"\r\n\r\n"
        answer, seconds = _raw(url, huge)
        assert answer.startswith(b"HTTP/1.1 431") and b'"request_headers_too_large"' in answer
        assert seconds < 2
        many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADER_COUNT + 1)) + b"\r\n"
        answer, _ = _raw(url, many)
        assert answer.startswith(b"HTTP/1.1 431")
        # Just under the limits, and a body in the same packet as the head, are served.
        fine = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * (MAX_HEAD_BYTES - 200) + b"\r\nConnection: close\r\n\r\n"
        assert _raw(url, fine)[0].startswith(b"HTTP/1.1 200")
        body = b"{}" + b" " * 60_000
        post = b"POST /v1/people HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        assert _raw(url, post, body)[0].startswith(b"HTTP/1.1 401")  # reached the app: no key
        # Two requests on one connection: the second head is counted afresh.
        with httpx.Client(base_url=url) as client:
            for _ in range(3):
                assert client.get("/healthz", headers={"X-Pad": "p" * (MAX_HEAD_BYTES // 2)}).status_code == 200


def _failed_attempts(url: str, forwarded: bool) -> list[int]:
    statuses = []
    with httpx.Client(base_url=url) as client:
        for i in range(30):
            headers = {"Authorization": "Bearer idsvc_wrong"}
            if forwarded:
                headers["X-Forwarded-For"] = f"203.0.113.{i}"
            statuses.append(client.get("/v1/me", headers=headers).status_code)
    return statuses


def test_x_forwarded_for_does_not_reset_the_failed_key_limit_by_default(ctx: AppContext, world: World) -> None:
    assert ctx.settings.trusted_proxies == ""
    with served(ctx) as url:
        statuses = _failed_attempts(url, forwarded=True)
    assert statuses[: ctx.settings.auth_failures_per_minute] == [401] * ctx.settings.auth_failures_per_minute
    assert set(statuses[ctx.settings.auth_failures_per_minute :]) == {429}


def test_x_forwarded_for_from_a_named_proxy_names_the_client(ctx: AppContext, world: World) -> None:
    trusting = dataclasses.replace(ctx, settings=ctx.settings.model_copy(update={"trusted_proxies": "127.0.0.1/32"}))
    with served(trusting) as url:
        assert set(_failed_attempts(url, forwarded=True)) == {401}  # 30 clients, one failure each
        assert 429 in _failed_attempts(url, forwarded=False)  # the proxy's own address is limited like any client
