"""Operator commands for the audit trail: verify the chain, list and export events."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from pydantic import TypeAdapter, ValidationError

from idsvc.audit import service
from idsvc.core.cli import cli_context, fail, print_json
from idsvc.core.validation import Timestamp

_timestamp = TypeAdapter(Timestamp)


def _when(value: str | None, option: str) -> object:
    if value is None:
        return None
    try:
        return _timestamp.validate_python(value)
    except ValidationError:
        fail(f"{option} must be ISO 8601 with a zone, e.g. 2026-12-01T00:00:00+08:00")


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
            since=_when(since, "--since"), until=_when(until, "--until"),  # type: ignore[arg-type]
        )

    @audit.command("export")
    def export(
        out: Path = typer.Option(None, help="CSV file to write (default: standard output)."),
        site: int = typer.Option(None),
        door: int = typer.Option(None),
        person: int = typer.Option(None),
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
                for chunk in service.csv_lines(service.iter_events(session, flt)):
                    target.write(chunk)
            finally:
                if out:
                    target.close()

    @audit.command("list")
    def list_events(
        site: int = typer.Option(None),
        door: int = typer.Option(None),
        person: int = typer.Option(None),
        actor: str = typer.Option(None),
        kind: str = typer.Option(None),
        since: str = typer.Option(None),
        until: str = typer.Option(None),
        limit: int = typer.Option(50, min=1, max=10000),
    ) -> None:
        flt = _filter(site, door, person, actor, kind, since, until)
        with cli_context() as ctx, ctx.db.session() as session:
            print_json([service.event_to_dict(e) for e in service.query(session, flt, limit)])
