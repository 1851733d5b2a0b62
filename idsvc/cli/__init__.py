"""The operator CLI: ``idsvc ...`` (also ``python -m idsvc ...``).

Each domain keeps its commands in its own ``cli.py`` and is mounted here.
"""

from __future__ import annotations

import typer

from idsvc.cli.common import fail
from idsvc.cli.server import register as register_server_commands

app = typer.Typer(no_args_is_help=True, add_completion=False, help="idsvc: access control and identity service.")
register_server_commands(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        fail("interrupted")
