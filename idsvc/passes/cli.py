"""``idsvc pass ...``: inspect any QR layer by layer; issue, renew, list and revoke passes; keys."""

from __future__ import annotations

import base64
import sys
from datetime import datetime, timedelta
from pathlib import Path

import typer
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import select

from idsvc.auth.principal import OPERATOR
from idsvc.core.cli import cli_context, fail, print_json
from idsvc.core.db import utcnow
from idsvc.passes import codec, issuing, keys, qr
from idsvc.passes.claims import PassType
from idsvc.passes.inspect import TrustedSigner, inspect
from idsvc.passes.models import IssuerKey, KeyPurpose
from idsvc.registry.models import Status

_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"BM")


def _read_input(source: str) -> tuple[str | None, bytes | None]:
    """QR text, '-' for standard input, or a file holding a picture or the text."""
    if source == "-":
        return sys.stdin.read().strip(), None
    path = Path(source)
    if not path.is_file():
        return source, None
    data = path.read_bytes()
    if data.startswith(_IMAGE_MAGIC):
        return None, data
    return data.decode("utf-8", "replace").strip(), None


def _service_signers() -> list[TrustedSigner]:
    """This service's issuer keys (from the configured database), for --service-keys."""
    with cli_context() as ctx, ctx.db.session() as session:
        rows = session.scalars(select(IssuerKey).where(IssuerKey.purpose == KeyPurpose.issuer)).all()
        return [TrustedSigner(load_der_public_key(r.public_der), frozenset({bytes.fromhex(r.kid)})) for r in rows]  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    passes = typer.Typer(no_args_is_help=True, help="Signed e-passes and their QR codes.")
    app.add_typer(passes, name="pass")

    @passes.command("inspect")
    def inspect_command(
        source: str = typer.Argument(..., help="QR text, a PNG/JPEG file, a text file, or '-' for standard input."),
        prefix: str = typer.Option(codec.PREFIX, help="Expected prefix: NH1 (ours) or HC1 (EU Digital COVID Certificate)."),
        cert: list[Path] = typer.Option([], help="Trusted signer certificate (X.509 DER or PEM); repeatable."),
        key: list[Path] = typer.Option([], help="Trusted public key (PEM/DER SPKI or raw 32-byte Ed25519); repeatable."),
        at: str = typer.Option(None, help="Validation time, ISO 8601 (default: now)."),
        service_keys: bool = typer.Option(False, "--service-keys", help="Also trust this service's issuer keys (reads the configured database)."),
    ) -> None:
        """Show, layer by layer, why a QR is accepted or refused. Exit 1 when a layer failed."""
        try:
            when = datetime.fromisoformat(at) if at else utcnow()
        except ValueError:
            fail("--at must be ISO 8601, e.g. 2026-12-01T08:00:00+08:00")
        if when.tzinfo is None:
            fail("--at needs a time zone, e.g. 2026-12-01T08:00:00+08:00 or ...Z")
        signers = []
        for path in [*cert, *key]:
            try:
                signers.append(TrustedSigner.from_bytes(path.read_bytes()))
            except (OSError, ValueError) as exc:
                fail(f"{path}: {exc}")
        if service_keys:
            signers += _service_signers()
        text, image = _read_input(source)
        report = inspect(text, image=image, prefix=prefix, signers=signers, at=when)
        print_json(report.to_dict())
        if not report.ok:
            raise typer.Exit(1)

    @passes.command("issue")
    def issue_command(
        person_id: int = typer.Option(..., "--person"),
        pass_type: PassType = typer.Option(None, "--type", help="Default: from the person's kind."),
        days: float = typer.Option(7, help="Lifetime in days (at most 31)."),
        png: Path = typer.Option(None, help="Also write the QR as PNG here."),
        svg: Path = typer.Option(None, help="Also write the QR as SVG here."),
    ) -> None:
        """Issue a pass; prints the pass and its QR text."""
        with cli_context() as ctx, ctx.db.session() as session:
            issued = issuing.issue(session, ctx.sealer, OPERATOR, person_id, pass_type=pass_type, lifetime=timedelta(days=days))
            _emit(issued, png, svg)

    @passes.command("renew")
    def renew_command(pass_id: int, days: float = typer.Option(7), png: Path = typer.Option(None), svg: Path = typer.Option(None)) -> None:
        """Issue a fresh pass in place of pass PASS_ID (same holder key); the old one runs out."""
        with cli_context() as ctx, ctx.db.session() as session:
            _emit(issuing.renew(session, ctx.sealer, OPERATOR, pass_id, timedelta(days=days)), png, svg)

    @passes.command("list")
    def list_command(person_id: int = typer.Option(..., "--person"), all_: bool = typer.Option(False, "--all", help="Include expired passes.")) -> None:
        """A person's passes (current ones; --all for expired too)."""
        with cli_context() as ctx, ctx.db.session() as session:
            print_json([issuing.pass_to_dict(p) for p in issuing.list_for_person(session, OPERATOR, person_id, all_)])

    @passes.command("revoke")
    def revoke_command(pass_id: int, reason: str = typer.Option(..., help="Why (kept in the audit trail).")) -> None:
        """Revoke a pass: every door refuses it from the next status refresh (about a second)."""
        with cli_context() as ctx, ctx.db.session() as session:
            print_json(issuing.pass_to_dict(issuing.change_status(session, OPERATOR, pass_id, Status.revoked, reason)))

    @passes.command("rotate-key")
    def rotate_command(es256: bool = typer.Option(False, "--es256", help="A P-256 key instead of Ed25519.")) -> None:
        """Make a new issuer key active; the old one verifies until its last pass expires."""
        with cli_context() as ctx, ctx.db.session() as session:
            row = keys.rotate(session, ctx.sealer, OPERATOR, codec.ALG_ES256 if es256 else codec.ALG_EDDSA)
            print_json({"kid": row.kid, "status": row.status.value})

    @passes.command("root-key")
    def root_key_command() -> None:
        """Print the trust-list root public key (base64 DER) that bridges pin as offline.root_public_key."""
        with cli_context() as ctx, ctx.db.session() as session:
            keys.active_issuer_key(session, ctx.sealer)  # a fresh install makes its root key here
            root = keys.root_public_key(session)
            assert root is not None
            print_json({"kid": root.kid, "root_public_key": base64.b64encode(root.public_der).decode()})

    @passes.command("withdraw-key")
    def withdraw_command(kid: str, reason: str = typer.Option(...)) -> None:
        """Stop trusting an issuer key: every pass it signed is refused at once."""
        with cli_context() as ctx, ctx.db.session() as session:
            row = keys.withdraw(session, kid, OPERATOR, reason)
            print_json({"kid": row.kid, "status": row.status.value})


def _emit(issued: issuing.IssuedPass, png: Path | None, svg: Path | None) -> None:
    if png:
        png.write_bytes(qr.render_png(issued.text))
    if svg:
        svg.write_bytes(qr.render_svg(issued.text))
    print_json({**issuing.pass_to_dict(issued.row), "qr_text": issued.text, "qr_version": qr.symbol_version(issued.text)})
