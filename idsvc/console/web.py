"""What every console page shares: templates, the reader's language, security headers, errors as pages.

``ConsoleRoute`` wraps each console endpoint: an ``ApiError`` raised by a service (the same errors
the API answers with JSON) becomes an HTML page with the same status and code, a missing session
becomes a redirect to the sign-in form, and every answer carries the security headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ValidationError

from idsvc.console.i18n import LANGUAGES, Translator, language_or_default
from idsvc.console.session import ConsoleSession, LoginRequired
from idsvc.core.errors import ApiError, InvalidInput

LANGUAGE_COOKIE = "idsvc_lang"
Model = TypeVar("Model", bound=BaseModel)
# No inline script or style anywhere: every script and stylesheet is a file the console serves.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "svg"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def translator(request: Request, timezone: str = "Asia/Shanghai") -> Translator:
    return Translator(language_or_default(request.cookies.get(LANGUAGE_COOKIE)), timezone)


def render(
    request: Request, template: str, session: ConsoleSession | None, *, status: int = 200, timezone: str = "Asia/Shanghai", here: str | None = None, **values: Any
) -> HTMLResponse:
    """``here``: where forms return to (default: this page; a fragment passes the page it sits in)."""
    t = translator(request, timezone)
    html = templates.get_template(template).render(
        t=t, lang=t.language, languages=LANGUAGES, session=session, principal=session.principal if session else None,
        here=here or request.url.path + (f"?{request.url.query}" if request.url.query else ""), **values,
    )
    return HTMLResponse(html, status_code=status)


def safe_next(target: str | None) -> str:
    """Only console paths: a sign-in link must not send the reader to another site."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/"


def redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                # Back to the page after signing in; a form's POST cannot be repeated by a redirect, so its page is the start page.
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "") if request.method == "GET" else "/console/"
                response = redirect("/console/login?next=" + quote(safe_next(target), safe="/"))
            except ApiError as exc:
                response = render(request, "error.html", None, status=exc.status, code=exc.code, message=exc.message)
            except RequestValidationError as exc:
                fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in exc.errors())
                response = render(request, "error.html", None, status=422, code="invalid_input", message=f"Check these fields: {fields}.")
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return console_handler


def validated(model: type[Model], **values: object) -> Model:
    """Form values through the API's own schema; its complaint becomes the API's invalid_input."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or e["msg"] for e in exc.errors())
        raise InvalidInput(f"Check these fields: {fields}.", code="invalid_input") from None
