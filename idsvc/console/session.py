"""Console sign-in: an API key is exchanged for a signed session cookie that holds the key's hash.

The cookie never holds the key itself; every request resolves the hash through the same auth
service as the API (``auth.service.resolve_hash``, behind the same one-second principal memory), so
a revoked or expired key ends its console sessions at once. The cookie is signed with a key derived
from the master key (every node shares it; rotating the master key signs everyone out), is HttpOnly
and SameSite=Strict, and carries the CSRF token every form must echo.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from itsdangerous import BadSignature, URLSafeTimedSerializer

from idsvc.auth import service as keys
from idsvc.auth.deps import AuthContext, get_context
from idsvc.auth.principal import Principal
from idsvc.core.errors import ApiError, Forbidden, TooManyRequests, Unauthenticated

COOKIE = "idsvc_console"
LOGIN_CSRF_COOKIE = "idsvc_console_login"
SESSION_SECONDS = 12 * 3600


class LoginRequired(ApiError):
    """No (valid) session: pages answer with a redirect to the sign-in page, not an error page."""

    status = 401
    code = "missing_credentials"


@dataclass(frozen=True)
class ConsoleSession:
    principal: Principal
    csrf: str
    session_id: str


def _serializer(ctx: AuthContext) -> URLSafeTimedSerializer:
    secret = ctx.sealer.blind_index("console-session", "signing-key")
    return URLSafeTimedSerializer(secret, salt="idsvc-console-session")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _resolve_hash(ctx: AuthContext, token_hash: str) -> Principal:
    cached = ctx.principals.get(token_hash)
    if cached is not None:
        return cached
    with ctx.db.session() as session:
        principal = keys.resolve_hash(session, token_hash)
    ctx.principals.put(token_hash, principal)
    return principal


async def sign_in(request: Request, token: str) -> str:
    """Check a presented key as the API would (same failure limit per address); return the cookie value."""
    ctx = get_context(request)
    token = token.strip()  # pasted keys often carry a space or a line break
    try:
        await run_in_threadpool(_check_token, ctx, token)
    except Unauthenticated:
        if ctx.kv.incr(f"authfail:{_client(request)}", 60) > ctx.settings.auth_failures_per_minute:
            raise TooManyRequests("Too many failed attempts; wait a minute.") from None
        raise
    return _serializer(ctx).dumps({"h": keys.hash_token(token), "c": secrets.token_urlsafe(24), "s": secrets.token_urlsafe(16)})


def _check_token(ctx: AuthContext, token: str) -> None:
    with ctx.db.session() as session:
        keys.resolve(session, token)


async def current(request: Request) -> ConsoleSession:
    """The signed-in caller, or LoginRequired (the page redirects to the sign-in form)."""
    ctx = get_context(request)
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise LoginRequired("Sign in first.")
    try:
        data = _serializer(ctx).loads(raw, max_age=SESSION_SECONDS)
        token_hash, csrf, session_id = str(data["h"]), str(data["c"]), str(data["s"])
    except (BadSignature, KeyError, TypeError):
        raise LoginRequired("The session has expired; sign in again.") from None
    if ctx.kv.exists(_signed_out(session_id)):
        raise LoginRequired("This session was signed out; sign in again.")
    try:
        principal = await run_in_threadpool(_resolve_hash, ctx, token_hash)
    except Unauthenticated:
        raise LoginRequired("The key behind this session is no longer valid; sign in again.") from None
    return ConsoleSession(principal, csrf, session_id)


def sign_out(request: Request, session: ConsoleSession) -> None:
    """The session ends on every node, even for a copy of its cookie (remembered until it would have expired)."""
    get_context(request).kv.add_once(_signed_out(session.session_id), SESSION_SECONDS)


def _signed_out(session_id: str) -> str:
    return f"console-signed-out:{session_id}"


def check_csrf(expected: str, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(expected, presented):
        raise Forbidden("The form is stale or did not come from this console; reload the page and try again.", code="csrf_failed")
