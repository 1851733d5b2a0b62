"""What every CLI command shares: the context, JSON output, and errors that name the fix."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.core.errors import ApiError
from idsvc.core.sealing import SealingError


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


@contextmanager
def cli_context() -> Iterator[AppContext]:
    """An app context for one command; service errors become one readable line, not a traceback."""
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"configuration is invalid: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']} (check the IDSVC_ environment variables)")
    try:
        ctx = AppContext.from_settings(settings)
    except SealingError as exc:
        fail(str(exc))
    try:
        yield ctx
    except ApiError as exc:
        fail(f"{exc.message} [{exc.code}]")
    except OperationalError as exc:
        fail(f"database error: {exc.orig}. Is the database reachable and migrated? Run `idsvc db upgrade`.")
    finally:
        ctx.close()
