"""How uvicorn serves idsvc: bounded request heads and forwarded headers trusted only from named proxies.

uvicorn's fast parser (httptools) reads a request head of any size before the application sees it:
one client sending a 100 MB header holds a worker for seconds and hundreds of megabytes. The
protocol here counts the bytes of each head as they arrive and answers 431
``request_headers_too_large`` once they pass :data:`MAX_HEAD_BYTES` (nginx's default buffers are
of the same order) or the head has more than :data:`MAX_HEADER_COUNT` headers.

``X-Forwarded-For`` decides the client address that failed keys are counted per, so it is believed
only from the proxies in ``IDSVC_TRUSTED_PROXIES`` (none by default: the peer's address counts).
"""

from __future__ import annotations

from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from idsvc.config import Settings
from idsvc.core.errors import error_body

MAX_HEAD_BYTES = 32 * 1024  # request line and every header of one request
MAX_HEADER_COUNT = 100


def _raw_answer(status_line: bytes, body: dict[str, Any]) -> bytes:
    """A whole HTTP/1.1 answer in the one error shape, written by the protocol itself (no app is involved)."""
    content = orjson.dumps(body)
    head = b"HTTP/1.1 " + status_line + b"\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: " + str(len(content)).encode() + b"\r\n\r\n"
    return head + content


HEAD_TOO_LARGE = _raw_answer(
    b"431 Request Header Fields Too Large",
    error_body("request_headers_too_large", f"The request line and headers are over {MAX_HEAD_BYTES} bytes, or more than {MAX_HEADER_COUNT} headers."),
)


class BoundedHeadProtocol(HttpToolsProtocol):
    """httptools with a cap on the bytes of each request head (the parser itself has none)."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        self._head_bytes: int | None = 0  # bytes of the head being read; None while the body is
        self._refused = False
        super().connection_made(transport)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        if len(self.headers) > MAX_HEADER_COUNT:
            self._refused = True  # no request cycle starts; data_received answers 431
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._head_bytes = 0  # the next request on this connection starts with its head
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        # Judged after parsing, since a chunk may end the head and carry body bytes too; a chunk is
        # at most what asyncio reads at once (256 KiB), so the parser holds little beyond the cap.
        too_large = self._head_bytes is not None and self._head_bytes > MAX_HEAD_BYTES
        if (too_large or self._refused) and not self.transport.is_closing():
            self.logger.warning("request head from %s over %d bytes or %d headers: refused with 431", self.client, MAX_HEAD_BYTES, MAX_HEADER_COUNT)
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What ``idsvc serve`` (and the tests that serve over real sockets) give uvicorn besides the app and address."""
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return {
        "http": BoundedHeadProtocol,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "server_header": False,
    }
