"""Operator commands for personal data: ``idsvc privacy ...`` (export, erasure) and ``idsvc keys ...``
(master-key rotation)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from idsvc.auth.principal import OPERATOR
from idsvc.core.cli import ROW_ID, cli_context, fail, parse, print_json
from idsvc.privacy import rotation
from idsvc.privacy.erasure import erase_person
from idsvc.privacy.export import export_person
from idsvc.privacy.requests import ErasureOrExportRequest

REQUESTER = typer.Option(..., help="Who asked (the person, or who acts for them); audited.")
PURPOSE = typer.Option(..., help='Why, e.g. "PIPL art. 45 access request"; audited.')


def _confirmed(question: str) -> bool:
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:  # no terminal to answer (end of input)
        return False


def register(app: typer.Typer) -> None:
    privacy = typer.Typer(no_args_is_help=True, help="A person's data: export everything held, or erase it (on their request).")
    app.add_typer(privacy, name="privacy")

    @privacy.command("export")
    def export(
        person_id: int = typer.Argument(..., **ROW_ID), requester: str = REQUESTER, purpose: str = PURPOSE, out: Path = typer.Option(None, help="Write the JSON here (default: standard output).")
    ) -> None:
        """Everything held about a person as one JSON document (registry, passes, consents, decisions)."""
        request = parse(ErasureOrExportRequest, requester=requester, purpose=purpose)
        with cli_context() as ctx, ctx.db.session() as s:
            document = export_person(s, OPERATOR, person_id, request)
        text = json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
        if out is None:
            typer.echo(text, nl=False)
            return
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror}")
        print_json({"person_id": person_id, "file": str(out), "audit_events": len(document["audit_events"])})

    @privacy.command("erase")
    def erase(person_id: int = typer.Argument(..., **ROW_ID), requester: str = REQUESTER, purpose: str = PURPOSE, yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
        """Erase a person: revoke them, delete their personal data, pseudonymise their audit trail. Not undoable."""
        request = parse(ErasureOrExportRequest, requester=requester, purpose=purpose)
        if not yes and not _confirmed(f"Erase person {person_id}? This cannot be undone"):
            fail("not erased: confirm on a terminal, or pass --yes")
        with cli_context() as ctx:
            with ctx.db.session() as s:
                done = erase_person(s, OPERATOR, person_id, request)
            ctx.db.compact_wal()
        print_json(asdict(done))

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
