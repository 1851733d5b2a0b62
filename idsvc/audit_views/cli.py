"""Operator commands for the audit trail: verify the chain, list and export events."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from idsvc.audit import service
from idsvc.audit_views import scope
from idsvc.auth.principal import OPERATOR
from idsvc.core.cli import ROW_ID, cli_context, parse_when, print_json


def register(app: typer.Typer) -> None:
    audit = typer.Typer(no_args_is_help=True, help="The hash-chained audit trail.")
    app.add_typer(audit, name="audit")

    @audit.command("verify")
    def verify() -> None:
        """Recompute the hash chain; exit 1 and name the broken events if anything was altered."""
        with cli_context() as ctx, ctx.db.session() as session:
            report = service.verify(session)
        print_json(report.__dict__)
        if not report.ok:
            raise typer.Exit(1)

    def _filter(site: int | None, door: int | None, person: int | None, actor: str | None, kind: str | None, since: str | None, until: str | None) -> service.AuditFilter:
        return service.AuditFilter(
            site_id=site, door_id=door, person_id=person, actor=actor, kind=kind,
            since=parse_when(since, "--since"), until=parse_when(until, "--until"),
        )

    @audit.command("export")
    def export(
        out: Path = typer.Option(None, help="CSV file to write (default: standard output)."),
        site: int = typer.Option(None, **ROW_ID),
        door: int = typer.Option(None, **ROW_ID),
        person: int = typer.Option(None, **ROW_ID),
        actor: str = typer.Option(None),
        kind: str = typer.Option(None, help="Exact kind or a prefix ending in '.' (e.g. 'grant.')."),
        since: str = typer.Option(None),
        until: str = typer.Option(None),
    ) -> None:
        """Export matching events as CSV."""
        flt = _filter(site, door, person, actor, kind, since, until)
        with cli_context() as ctx, ctx.db.session() as session:
            target = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
            try:
                for chunk in service.csv_lines(scope.shown(OPERATOR, flt, service.iter_events(session, flt))):
                    target.write(chunk)
            finally:
                if out:
                    target.close()

    @audit.command("list", help='List matching events as JSON, in the order of the trail (at most --limit).')
    def list_events(
        site: int = typer.Option(None, **ROW_ID),
        door: int = typer.Option(None, **ROW_ID),
        person: int = typer.Option(None, **ROW_ID),
        actor: str = typer.Option(None),
        kind: str = typer.Option(None),
        since: str = typer.Option(None),
        until: str = typer.Option(None),
        limit: int = typer.Option(50, min=1, max=10000),
    ) -> None:
        flt = _filter(site, door, person, actor, kind, since, until)
        with cli_context() as ctx, ctx.db.session() as session:
            print_json(list(scope.shown(OPERATOR, flt, service.query(session, flt, limit))))
