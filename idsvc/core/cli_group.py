"""The click group both CLIs use: a file-system error on a path the operator gave is one line naming
the path and the reason (missing, a folder, unreadable, a name too long), never a traceback."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup


class OperatorGroup(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.filename is None:  # not about a path the operator named: a real fault
                raise
            typer.secho(f"error: {exc.filename}: {exc.strerror or exc} (check the path)", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
