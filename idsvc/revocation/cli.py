"""``idsvc revoke|suspend|reinstate <pass|person|grant|device> ID --reason ...``, ``idsvc revoke issuer-key KID``,
and ``idsvc sync ...`` (feed to a file, a site's face key, pruning the change log, the deny set).

The operator acts as a district admin on the database; a running service learns of the change
through the same notices as for an API call (Redis pub/sub), so every node denies at once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import typer

from idsvc.auth.principal import OPERATOR
from idsvc.core.cli import ROW_ID, cli_context, parse, print_json, run
from idsvc.registry.schemas import StatusChange
from idsvc.revocation import service
from idsvc.revocation.service import Verb
from idsvc.sync import feed

_CHANGES = {"pass": service.change_pass, "person": service.change_person, "grant": service.change_grant, "device": service.change_device}
REASON = typer.Option(..., "--reason", help="Why; recorded in the audit trail.")


def register(app: typer.Typer) -> None:
    for verb in Verb:
        group = typer.Typer(no_args_is_help=True, help=f"{verb.value.capitalize()} a pass, person, grant or device" + (" (or withdraw an issuer key)." if verb is Verb.revoke else "."))
        app.add_typer(group, name=verb.value)
        for entity, change in _CHANGES.items():
            group.command(entity, help=f"{verb.value.capitalize()} a {entity} by its id.")(_command(change, verb))
        if verb is Verb.revoke:

            @group.command("issuer-key")
            def withdraw_key(kid: str = typer.Argument(..., help="hex kid of the issuer key"), reason: str = REASON) -> None:
                """Withdraw an issuer key: every pass it signed fails verification from now on."""
                body = parse(StatusChange, reason=reason)
                run(lambda s: service.withdraw_issuer_key(s, OPERATOR, kid, body.reason).to_dict())

    sync = typer.Typer(no_args_is_help=True, help="The signed sync feed for bridges.")
    app.add_typer(sync, name="sync")

    @sync.command("feed")
    def write_feed(site_id: int = typer.Option(..., "--site", **ROW_ID), out: Path = typer.Option(..., help="File to write the signed feed to."), since: int = typer.Option(None, min=0, max=2**63 - 1, help="Delta from this version; default a full snapshot.")) -> None:
        """Write a site's signed feed to a file (for a bridge provisioned without a network)."""
        with cli_context() as ctx, ctx.db.session() as s:
            version, document = feed.build(s, ctx.sealer, ctx.bus, ctx.settings, site_id, since)
        out.write_bytes(document)
        print_json({"site": site_id, "version": version, "bytes": len(document), "file": str(out)})

    @sync.command("face-key")
    def face_key(site_id: int = typer.Option(..., "--site", **ROW_ID)) -> None:
        """Print the key (base64) that opens the site's face templates in its feed; give it to its bridges only."""
        with cli_context() as ctx, ctx.db.session() as s:
            print_json({"site": site_id, "face_key": base64.b64encode(feed.site_face_key(s, ctx.sealer, site_id)).decode()})

    @sync.command("prune")
    def prune(
        days: int = typer.Option(None, min=1, max=36500, help="Keep this many days of changes (default IDSVC_SYNC_KEEP_DAYS); bridges further behind get a snapshot."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    ) -> None:
        """Drop old entries of the change log; its size then stays bounded. `idsvc serve` runs it daily (job sync_prune)."""
        with cli_context() as ctx, ctx.db.session() as s:
            print_json(feed.prune_older_than(s, timedelta(days=days or ctx.settings.sync_keep_days), dry_run=dry_run))

    @sync.command("rebuild-deny-set")
    def rebuild_deny_set() -> None:
        """Rebuild the shared deny set from the database (after a Redis loss; drops expired passes)."""
        with cli_context() as ctx, ctx.db.session() as s:
            ctx.deny.rebuild(s)
            print_json({"entries": len(ctx.deny)})


def _command(change: service.Change, verb: Verb) -> Callable[..., None]:
    def command(item_id: int = typer.Argument(..., help="row id", **ROW_ID), reason: str = REASON) -> None:
        body = parse(StatusChange, reason=reason)
        run(lambda s: change(s, OPERATOR, item_id, verb, body.reason).to_dict())

    return command
