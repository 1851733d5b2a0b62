"""Operator commands for API keys: how the first district admin key comes into being."""

from __future__ import annotations

import typer

from idsvc.auth import service
from idsvc.auth.api import ApiKeyIn, ApiKeyOut, IssuedKeyOut
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR
from idsvc.core.cli import ROW_ID, parse, run


def register(app: typer.Typer) -> None:
    key = typer.Typer(no_args_is_help=True, help="API keys for people and devices.")
    app.add_typer(key, name="key")

    @key.command("create")
    def create(
        role: Role = typer.Option(...),
        site_id: int = typer.Option(None, "--site", **ROW_ID, help="For site_admin keys."),
        person_id: int = typer.Option(None, "--person", **ROW_ID, help="For owner and tenant keys (optional for admins)."),
        device_id: int = typer.Option(None, "--device", **ROW_ID, help="For device keys."),
        label: str = typer.Option("", help="What the key is for, shown in listings."),
    ) -> None:
        """Issue a key; the token is printed once and only its hash is stored."""

        body = parse(ApiKeyIn, role=role, site_id=site_id, person_id=person_id, device_id=device_id, label=label)

        def issue(session):  # type: ignore[no-untyped-def]
            issued = service.issue_key(session, OPERATOR, body.role, site_id=body.site_id, person_id=body.person_id, device_id=body.device_id, label=body.label)
            return IssuedKeyOut(**ApiKeyOut.model_validate(issued.key).model_dump(), token=issued.token)

        run(issue)

    @key.command("list", help='List API keys (of one site with --site); tokens are never shown again.')
    def list_keys(site_id: int = typer.Option(None, "--site", **ROW_ID)) -> None:
        run(lambda s: [ApiKeyOut.model_validate(k).model_dump(mode="json") for k in service.list_keys(s, OPERATOR, site_id)])

    @key.command("revoke", help='Revoke an API key at once (by its id from `idsvc key list`).')
    def revoke(key_id: int = typer.Argument(..., **ROW_ID)) -> None:
        run(lambda s: ApiKeyOut.model_validate(service.revoke_key(s, OPERATOR, key_id)))
