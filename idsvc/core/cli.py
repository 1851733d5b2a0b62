"""What every CLI command shares: the context, JSON output, and errors that name the fix.

In core so that each domain's ``cli.py`` can use it without importing the CLI root, which mounts
them all. The root (``idsvc.cli``) installs how a context is opened (``use_context_factory``),
because building one is the app wiring's job (``idsvc.context``), above every domain.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from idsvc.config import Settings
from idsvc.core.context import ServiceContext
from idsvc.core.errors import ApiError
from idsvc.core.sealing import SealingError

M = TypeVar("M", bound=BaseModel)
ContextFactory = Callable[[Settings], ServiceContext]
_open_context: ContextFactory | None = None


def use_context_factory(factory: ContextFactory) -> None:
    global _open_context
    _open_context = factory


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def parse(model: type[M], **fields: Any) -> M:
    """Build a request schema from options; a bad value names the option to fix."""
    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        hint = " (ISO 8601 with a zone, e.g. 2026-12-01T00:00:00+08:00)" if "timezone" in first["msg"] or "datetime" in first["type"] else ""
        fail(f"{where}: {first['msg']}{hint}")


def run(action: Callable[[Session], Any]) -> None:
    """Run one service call as the operator, in one transaction, and print its result as JSON."""
    with cli_context() as ctx, ctx.db.session() as session:
        result = action(session)
        print_json(result.model_dump(mode="json") if isinstance(result, BaseModel) else result)


@contextmanager
def cli_context() -> Iterator[ServiceContext]:
    """An app context for one command; service errors become one readable line, not a traceback."""
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"configuration is invalid: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']} (check the IDSVC_ environment variables)")
    if _open_context is None:  # a wiring mistake: commands run mounted on the idsvc.cli root, which installs it
        raise RuntimeError("no CLI context factory installed; run commands through idsvc.cli")
    try:
        ctx = _open_context(settings)
    except SealingError as exc:
        fail(str(exc))
    try:
        yield ctx
    except ApiError as exc:
        fail(f"{exc.message} [{exc.code}]")
    except IntegrityError:
        fail("the change conflicts with existing data (a duplicate, or a row that was removed meanwhile)")
    except OperationalError as exc:
        fail(f"database error: {exc.orig}. Is the database reachable and migrated? Run `idsvc db upgrade`.")
    finally:
        ctx.close()
