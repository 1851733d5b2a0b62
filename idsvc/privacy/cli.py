"""Operator commands for personal data: ``idsvc keys`` (master-key rotation)."""

from __future__ import annotations

import typer

from idsvc.core.cli import cli_context, print_json
from idsvc.privacy import rotation


def register(app: typer.Typer) -> None:
    keys = typer.Typer(no_args_is_help=True, help="Master keys that seal personal data, templates and issuer keys at rest (IDSVC_MASTER_KEY).")
    app.add_typer(keys, name="keys")

    @keys.command("status")
    def keys_status() -> None:
        """Rows sealed under the current (first) master key and under older ones, per table."""
        with cli_context() as ctx:
            print_json(rotation.status(ctx.db, ctx.sealer))

    @keys.command("rotate")
    def keys_rotate(batch: int = typer.Option(500, min=1, max=100_000, help="Rows per transaction.")) -> None:
        """Re-seal everything under the first key of IDSVC_MASTER_KEY, in batches, while the service runs.

        Put the new key first (IDSVC_MASTER_KEY=NEW,OLD) on every node, run this, then drop OLD once
        `idsvc keys status` shows no rows under older keys.
        """
        with cli_context() as ctx:
            moved = rotation.rotate(ctx.db, ctx.sealer, batch, lambda table, n: typer.echo(f"{table}: {n} re-sealed", err=True))
            print_json({"resealed": moved, "status": rotation.status(ctx.db, ctx.sealer)})
