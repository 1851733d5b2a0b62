"""``idsvc jobs list`` and ``idsvc jobs run NAME [--dry-run]``."""

from __future__ import annotations

from typing import cast

import typer

from idsvc.context import AppContext
from idsvc.core.cli import cli_context, fail, print_json
from idsvc.core.scheduler import JobNotFound
from idsvc.jobs import scheduler


def register(app: typer.Typer) -> None:
    jobs = typer.Typer(no_args_is_help=True, help="The periodic jobs `idsvc serve` runs (purge, pruning, journal compaction, retention).")
    app.add_typer(jobs, name="jobs")

    @jobs.command("list")
    def list_jobs() -> None:
        """Each job's last run (when, where, result) and next run."""
        with cli_context() as ctx:
            print_json(scheduler(cast(AppContext, ctx)).states())

    @jobs.command("run")
    def run_job(name: str, dry_run: bool = typer.Option(False, "--dry-run", help="Report what would go; change nothing.")) -> None:
        """Run a job now (it waits for nothing: if it is running elsewhere, say so and stop)."""
        with cli_context() as ctx:
            try:
                result = scheduler(cast(AppContext, ctx)).run_now(name, dry_run=dry_run)
            except JobNotFound:
                fail(f"no job '{name}'; `idsvc jobs list` names them")
        if result is None:
            fail(f"job '{name}' is running on another node or process; try again when it has finished")
        print_json(result)
        if not result["ok"]:
            raise typer.Exit(1)
