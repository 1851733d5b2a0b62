"""``idsvc pass ...``: inspect any QR layer by layer; issue, renew and list passes; issuer keys.

Revoking and suspending are the revocation verbs (``idsvc revoke pass ID``), like every other entity's.
"""

from __future__ import annotations

import math
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import cast

import typer

from idsvc.auth.principal import OPERATOR
from idsvc.core.cli import ROW_ID, cli_context, fail, parse_when, print_json, read_file
from idsvc.core.db import utcnow
from idsvc.passes import codec, issuing, keys, qr
from idsvc.passes.claims import PassType
from idsvc.passes.inspect import Standing, TrustedSigner, inspect, service_signers
from idsvc.passes.verify import PassContext, PassVerifier

_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"BM")
# A QR text starts with its scheme (NH1:, HC1:, NHU1:, https:, ...); a file name does not. Telling
# them apart by shape, not by asking the file system, keeps a long QR text from being taken for a
# path (a QR text can hold '/' and be far longer than any file name may be).
_QR_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{1,15}:")


def _read_input(source: str) -> tuple[str | None, bytes | None]:
    """QR text, '-' for standard input, or a file holding a picture or the text."""
    if source == "-":
        return sys.stdin.read().strip(), None
    if _QR_SCHEME.match(source):
        return source, None
    data = read_file(Path(source), "the QR picture or text file (or give the QR text itself, with its prefix such as NH1: or HC1:)")
    if data.startswith(_IMAGE_MAGIC):
        return None, data
    return data.decode("utf-8", "replace").strip(), None


def _lifetime(days: float) -> timedelta:
    if not math.isfinite(days) or not 0 < days <= issuing.MAX_LIFETIME.days:
        fail(f"--days must be a number of days above 0 and at most {issuing.MAX_LIFETIME.days}, not {days}")
    return timedelta(days=days)


def _service_checks(ctx: PassContext) -> tuple[list[TrustedSigner], Standing]:
    """This service's issuer keys and its records check, for --service-keys (the same as a door's)."""
    with ctx.db.session() as session:
        signers = service_signers(session)
        ctx.deny.rebuild(session, shared=False)  # this process's copy only: inspecting changes nothing
    return signers, PassVerifier(ctx, refresh_seconds=0).standing


def register(app: typer.Typer) -> None:
    passes = typer.Typer(no_args_is_help=True, help="Signed e-passes and their QR codes.")
    app.add_typer(passes, name="pass")

    @passes.command("inspect")
    def inspect_command(
        source: str = typer.Argument(..., help="QR text (with its prefix: NH1:, HC1:), a PNG/JPEG file, a text file, or '-' for standard input."),
        prefix: str = typer.Option(None, help="Expected prefix, NH1 (ours) or HC1 (EU Digital COVID Certificate); default: from the text."),
        cert: list[Path] = typer.Option([], help="Trusted signer certificate (X.509 DER or PEM); repeatable."),
        key: list[Path] = typer.Option([], help="Trusted public key (PEM/DER SPKI or raw 32-byte Ed25519); repeatable."),
        at: str = typer.Option(None, help="Validation time, ISO 8601 with a zone (default: now)."),
        service_keys: bool = typer.Option(
            False, "--service-keys", help="Trust this service's issuer keys and check the pass's status in its records (reads the configured database)."
        ),
    ) -> None:
        """Show, layer by layer, why a QR is accepted or refused. Exit 1 when a layer failed."""
        when = parse_when(at, "--at") or utcnow()
        signers = []
        for path in [*cert, *key]:
            try:
                signers.append(TrustedSigner.from_bytes(read_file(path, "the trusted certificate or key")))
            except ValueError as exc:
                fail(f"{path}: {exc}")
        text, image = _read_input(source)
        if service_keys:
            with cli_context() as ctx:
                service_signers, standing = _service_checks(cast(PassContext, ctx))  # the app's context is one
                report = inspect(text, image=image, prefix=prefix, signers=signers + service_signers, standing=standing, at=when)
        else:
            report = inspect(text, image=image, prefix=prefix, signers=signers, at=when)
        print_json(report.to_dict())
        if not report.ok:
            raise typer.Exit(1)

    @passes.command("issue")
    def issue_command(
        person_id: int = typer.Option(..., "--person", **ROW_ID),
        pass_type: PassType = typer.Option(None, "--type", help="Default: from the person's kind."),
        days: float = typer.Option(7, help="Lifetime in days (at most 31)."),
        png: Path = typer.Option(None, help="Also write the QR as PNG here."),
        svg: Path = typer.Option(None, help="Also write the QR as SVG here."),
    ) -> None:
        """Issue a pass; prints the pass and its QR text."""
        with cli_context() as ctx, ctx.db.session() as session:
            issued = issuing.issue(session, ctx.sealer, OPERATOR, person_id, pass_type=pass_type, lifetime=_lifetime(days))
            _emit(issued, png, svg)

    @passes.command("renew")
    def renew_command(pass_id: int = typer.Argument(..., **ROW_ID), days: float = typer.Option(7), png: Path = typer.Option(None), svg: Path = typer.Option(None)) -> None:
        """Issue a fresh pass in place of pass PASS_ID (same holder key); the old one runs out."""
        with cli_context() as ctx, ctx.db.session() as session:
            _emit(issuing.renew(session, ctx.sealer, OPERATOR, pass_id, _lifetime(days)), png, svg)

    @passes.command("list")
    def list_command(person_id: int = typer.Option(..., "--person", **ROW_ID), all_: bool = typer.Option(False, "--all", help="Include expired passes.")) -> None:
        """A person's passes (current ones; --all for expired too)."""
        with cli_context() as ctx, ctx.db.session() as session:
            print_json([issuing.pass_to_dict(p) for p in issuing.list_for_person(session, OPERATOR, person_id, all_)])

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
            print_json(keys.trust_anchor(session, ctx.sealer))


def _emit(issued: issuing.IssuedPass, png: Path | None, svg: Path | None) -> None:
    if png:
        png.write_bytes(qr.render_png(issued.text))
    if svg:
        svg.write_bytes(qr.render_svg(issued.text))
    print_json({**issuing.pass_to_dict(issued.row), "qr_text": issued.text, "qr_version": qr.symbol_version(issued.text)})
