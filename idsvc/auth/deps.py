"""FastAPI dependencies: the app context and the authenticated principal."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from idsvc.auth import service
from idsvc.auth.cache import PrincipalCache
from idsvc.auth.principal import Principal
from idsvc.core.context import ServiceContext
from idsvc.core.errors import TooManyRequests, Unauthenticated


class AuthContext(ServiceContext, Protocol):
    """The app context (idsvc.context.AppContext, set on app.state by create_app) as views use it."""

    principals: PrincipalCache


def get_context(request: Request) -> AuthContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[AuthContext, Depends(get_context)]


def _resolve(ctx: AuthContext, token: str) -> Principal:
    with ctx.db.session() as session:
        return service.resolve(session, token)


# Declared as security schemes so the OpenAPI (and /docs' Authorize button) shows how every operation
# is authenticated; either one carries the API key. auto_error=False: a missing key is our own 401.
bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description="An API key: `Authorization: Bearer idsvc_...`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey", description="The same API key in the X-API-Key header")


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key")


async def get_principal(
    request: Request,
    ctx: Ctx,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    _api_key: Annotated[str | None, Security(api_key_header)],
) -> Principal:
    """Async so that a remembered key costs no thread hop; a database read goes to the threadpool."""
    client = request.client.host if request.client else "unknown"
    limit_key = f"authfail:{client}"
    token = _presented_token(request)
    if not token:
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'.", code="missing_credentials")
    token_hash = service.hash_token(token)
    cached = ctx.principals.get(token_hash)
    if cached is not None:
        return cached
    try:
        principal = await run_in_threadpool(_resolve, ctx, token)
    except Unauthenticated:
        # Count failures per client so keys cannot be guessed at speed.
        if ctx.kv.incr(limit_key, 60) > ctx.settings.auth_failures_per_minute:
            raise TooManyRequests("Too many failed attempts; wait a minute.") from None
        raise
    ctx.principals.put(token_hash, principal)
    return principal


Caller = Annotated[Principal, Depends(get_principal)]
