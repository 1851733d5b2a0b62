"""One error shape for every 4xx: ``{"error": {"code", "message", "details"}}``.

Services raise :class:`ApiError` subclasses; the handlers installed by :func:`install_error_handlers`
turn them, validation failures, unknown routes and integrity conflicts into that shape, so a lock
maker can branch on ``code`` and a person can read ``message``.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from idsvc.core.error_codes import check_registered
from idsvc.core.kv import StoreUnavailable
from idsvc.core.sealing import SealingError

log = logging.getLogger(__name__)


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details


class InvalidInput(ApiError):
    status = 422
    code = "invalid_input"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Unauthenticated(ApiError):
    status = 401
    code = "unauthenticated"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class TooManyRequests(ApiError):
    status = 429
    code = "rate_limited"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error shape; ``details`` is always an object (empty when there is nothing to add)."""
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def _answer(code: str, message: str, status: int, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    check_registered(code, status)
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


# A body with thousands of unknown keys has thousands of problems: the answer names the first few and
# counts the rest, so its size does not grow with what the caller sent.
MAX_LISTED_PROBLEMS = 20


def validation_details(errors: list[Any]) -> dict[str, Any]:
    """``{"fields": [{"field", "problem", "type"}], "count": n}`` from pydantic's errors: the first
    :data:`MAX_LISTED_PROBLEMS` of ``count`` (without the echoed input: it may be a photo or a secret)."""
    fields = [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", ""), "type": err.get("type", "")}
        for err in errors[:MAX_LISTED_PROBLEMS]
    ]
    return {"fields": fields, "count": len(errors)}


def _degraded(dependency: str) -> JSONResponse:
    response = _answer(
        "service_degraded",
        f"The service cannot reach its {'database' if dependency == 'database' else 'key-value store (Redis)'} right now. Keep the door shut and retry.",
        503,
        {"dependency": dependency},
    )
    response.headers["Retry-After"] = "2"
    return response


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _answer(exc.code, exc.message, exc.status, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        fields = ", ".join(d["field"] for d in details["fields"][:5])
        return _answer("invalid_input", f"The request is not valid: check {fields}.", 422, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return _answer(code, message, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(SealingError)
    async def _sealing_error(_request: Request, exc: SealingError) -> JSONResponse:
        # Stored data that does not open: a wrong or missing master key, or an edited row. Not the caller's fault.
        log.error("sealed data could not be opened: %s", exc)
        return _answer("sealed_data_unreadable", f"Stored data could not be opened: {exc}. An operator must check IDSVC_MASTER_KEY.", 500)

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_request: Request, exc: IntegrityError) -> JSONResponse:
        # Services check uniqueness first; this catches the race between two writers.
        log.info("integrity conflict: %s", exc.orig)
        return _answer("conflict", "The change conflicts with existing data; reload and retry.", 409)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        # Unreachable, silent past IDSVC_DB_TIMEOUT_S, or out of connections: the node is degraded, not broken.
        log.warning("database unavailable: %s", exc)
        return _degraded("database")

    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(redis.ConnectionError)
    @app.exception_handler(redis.TimeoutError)
    async def _store_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("key-value store unavailable: %s", exc)
        return _degraded("kv")

    @app.exception_handler(Exception)
    async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: logged with its traceback (Starlette re-raises it), answered in the one shape.
        return _answer("internal_error", "The service failed to answer this request. Keep the door shut and retry; report it if it persists.", 500)
