"""The operator CLI: ``idsvc ...`` (also ``python -m idsvc ...``).

Each domain keeps its commands in its own ``cli.py`` (a ``register(app)`` function). The root loads
a domain's module only when one of its commands runs: importing them all costs FastAPI, SQLAlchemy,
numpy and onnxruntime, seconds that ``idsvc --help`` or ``idsvc --version`` should not pay. The help
line of each top-level command is therefore written here too; tests/foundation/test_cli_shape.py keeps
it equal to the domain's own.
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click as click
from typer.core import TyperCommand

from idsvc import __version__
from idsvc.core.cli_group import OperatorGroup


@dataclass(frozen=True)
class Mounted:
    module: str  # its register(app) adds this command to the app
    help: str


COMMANDS: dict[str, Mounted] = {
    "serve": Mounted("idsvc.cli.server", "Migrate the database and run the HTTP service."),
    "db": Mounted("idsvc.cli.server", "Database schema."),
    "master-key": Mounted("idsvc.cli.server", "Print a new random master key for IDSVC_MASTER_KEY (base64 of 32 bytes)."),
    "site": Mounted("idsvc.registry.cli", "Sites (communities, industrial parks)."),
    "building": Mounted("idsvc.registry.cli", "Buildings of a site."),
    "unit": Mounted("idsvc.registry.cli", "Units: flats and shops, each with a stable code."),
    "door": Mounted("idsvc.registry.cli", "Doors, gate lanes and door groups."),
    "person": Mounted("idsvc.registry.cli", "People and vehicles."),
    "device": Mounted("idsvc.registry.cli", "Locks, readers, cameras and bridges."),
    "grant": Mounted("idsvc.registry.cli", "Grants and tenancies."),
    "key": Mounted("idsvc.auth.cli", "API keys for people and devices."),
    "audit": Mounted("idsvc.audit_views.cli", "The hash-chained audit trail."),
    "models": Mounted("idsvc.faces.cli", "Face model packs (see docs/models.md for licences)."),
    "faces": Mounted("idsvc.faces.cli", "Face comparison, threshold calibration and enrolment."),
    "pass": Mounted("idsvc.passes.cli", "Signed e-passes and their QR codes."),
    "revoke": Mounted("idsvc.revocation.cli", "Revoke a pass, person, grant or device (or withdraw an issuer key)."),
    "suspend": Mounted("idsvc.revocation.cli", "Suspend a pass, person, grant or device."),
    "reinstate": Mounted("idsvc.revocation.cli", "Reinstate a pass, person, grant or device."),
    "sync": Mounted("idsvc.revocation.cli", "The signed sync feed for bridges."),
    "alarm": Mounted("idsvc.alarms.cli", "Alarms: list, acknowledge, clear (docs/alarms.md)."),
    "sensor": Mounted("idsvc.alarms.cli", "Safety sensors and HJ 212 stations (docs/sensors.md)."),
    "privacy": Mounted("idsvc.privacy.cli", "A person's data: export everything held, or erase it (on their request)."),
    "keys": Mounted("idsvc.privacy.cli", "Master keys that seal personal data, templates and issuer keys at rest (IDSVC_MASTER_KEY)."),
    "jobs": Mounted("idsvc.jobs.cli", "The periodic jobs `idsvc serve` runs (purge, pruning, journal compaction, retention)."),
}


def _open_app_context(settings: Any) -> Any:
    from idsvc.context import AppContext  # the wiring: imported when a command needs a context, not for --help

    return AppContext.from_settings(settings)


def load_domain(module: str) -> Any:
    """The click group holding every command a domain module registers."""
    from idsvc.core.cli import use_context_factory

    # The domains' commands open the app's context through core.cli; building one is the wiring's job.
    use_context_factory(_open_app_context)
    app = typer.Typer()
    importlib.import_module(module).register(app)
    return typer.main.get_group(app)


class LazyGroup(OperatorGroup):
    """Lists :data:`COMMANDS` from the table; imports a domain only to run (or show help for) it."""

    _listing = False
    _loaded: dict[str, Any] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        mounted = COMMANDS.get(cmd_name)
        if mounted is None:
            return super().get_command(ctx, cmd_name)
        if self._listing:  # the root's help needs names and help lines only
            return TyperCommand(cmd_name, help=mounted.help)
        if mounted.module not in self._loaded:
            self._loaded[mounted.module] = load_domain(mounted.module)
        return self._loaded[mounted.module].get_command(ctx, cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as exc:
            close = difflib.get_close_matches(args[0], COMMANDS) if args else []
            if close and "Did you mean" not in exc.message:
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(repr(c) for c in close)}?"
            raise


app = typer.Typer(cls=LazyGroup, no_args_is_help=True, add_completion=False, help="idsvc: access control and identity service.")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"idsvc {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
) -> None:
    """idsvc: access control and identity service."""


def main() -> None:
    # Whatever a command creates (the database, its WAL, journals, keys, exports of personal data)
    # is readable by this account only (core/private_files.py sets the same where the service creates files).
    os.umask(0o077)
    try:
        app()
    except KeyboardInterrupt:
        typer.secho("error: interrupted", fg=typer.colors.RED, err=True)
        raise SystemExit(130) from None
