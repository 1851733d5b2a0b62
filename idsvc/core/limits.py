"""Request body caps, per route: refused (413 ``payload_too_large``) before anything reads the body.

Every route gets the small JSON cap (``IDSVC_MAX_JSON_BODY_BYTES``): its objects have a few fields,
and a small cap bounds what one request can cost before validation starts (parsing, pydantic's
errors and the answer that lists them). Routes that take pictures or batches declare more with
:func:`body_limit`; no route gets more than ``IDSVC_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idsvc.core.errors import error_body

# What the routes above the JSON default declare.
FRAME_BODY_BYTES = 4 * 1024 * 1024 + 64 * 1024  # one camera frame of at most 4 MiB, and its form fields
PHOTOS_BODY_BYTES = 8 * 1024 * 1024  # the 1-5 photos of a face enrolment
BATCH_BODY_BYTES = 1024 * 1024  # 500 device events or sensor readings

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_ATTRIBUTE = "__idsvc_body_limit__"


def body_limit(max_bytes: int) -> Callable[[Endpoint], Endpoint]:
    """Declare that an endpoint takes bodies up to ``max_bytes``, above the JSON default (place it under ``@router.post``)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _ATTRIBUTE, max_bytes)
        return endpoint

    return mark


@dataclass(frozen=True)
class LargerBody:
    """A route that declared a larger cap."""

    path: re.Pattern[str]
    methods: frozenset[str]
    max_bytes: int


def larger_bodies(routes: Iterable[Any]) -> list[LargerBody]:
    """The routes (FastAPI ``APIRoute``s, with their full path) that declared a cap with :func:`body_limit`."""
    return [
        LargerBody(route.path_regex, frozenset(route.methods), getattr(route.endpoint, _ATTRIBUTE))
        for route in routes
        if hasattr(getattr(route, "endpoint", None), _ATTRIBUTE)
    ]


class BodySizeLimit:
    def __init__(self, app: ASGIApp, default_bytes: int, ceiling_bytes: int, larger: list[LargerBody]) -> None:
        self.app = app
        self.default_bytes = min(default_bytes, ceiling_bytes)
        self.ceiling_bytes = ceiling_bytes
        self.larger = larger

    def limit_for(self, scope: Scope) -> int:
        for route in self.larger:
            if scope["method"] in route.methods and route.path.match(scope["path"]):
                return min(route.max_bytes, self.ceiling_bytes)
        return self.default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, limit)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._refuse(send, limit)

    async def _refuse(self, send: Send, max_bytes: int) -> None:
        body = orjson.dumps(error_body("payload_too_large", _message(max_bytes), {"max_bytes": max_bytes}))
        headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _message(max_bytes: int) -> str:
    return f"The request body is over {max_bytes} bytes, the limit of this endpoint."


class _TooLarge(HTTPException):
    """Raised from ``receive`` for a body without (or with a lying) Content-Length.

    An HTTPException so that FastAPI's body reader passes it on as it is (it turns any other error
    into a 400) and the error handlers answer 413 in the one error shape.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _message(max_bytes))
