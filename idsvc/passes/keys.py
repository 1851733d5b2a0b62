"""Issuer keys: created on first use, stored sealed, rotated, withdrawn, published in a trust list.

A root key signs the trust list; issuer keys sign passes. Rotation makes a new issuer key active and
keeps the old one verifying until the last pass it signed expires. Withdrawing a key revokes every
pass it signed, at once, because verifiers stop trusting its kid.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cwt import COSEKey
from cwt.cose_key_interface import COSEKeyInterface
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.auth.principal import Principal
from idsvc.core.db import utcnow
from idsvc.core.errors import Conflict, InvalidInput, NotFound
from idsvc.core.sealing import Sealer
from idsvc.core.times import rfc3339
from idsvc.passes import codec, versions
from idsvc.passes.models import IssuerKey, KeyPurpose, KeyStatus, Pass


def _aad(kid: str) -> str:
    return f"pass-issuer-key:{kid}"


def resealed(sealer: Sealer, row: IssuerKey) -> dict[str, Any]:
    """The row's sealed column re-sealed under the current master key (master-key rotation)."""
    return {"sealed_private": sealer.seal(sealer.open(row.sealed_private, _aad(row.kid)), _aad(row.kid))}


_GENERATORS: dict[int, Callable[[], PrivateKeyTypes]] = {
    codec.ALG_EDDSA: Ed25519PrivateKey.generate,
    codec.ALG_ES256: lambda: ec.generate_private_key(ec.SECP256R1()),
}


def _new_key(session: Session, sealer: Sealer, purpose: KeyPurpose, alg: int = codec.ALG_EDDSA) -> IssuerKey:
    private = _GENERATORS[alg]()
    kid = codec.kid_of(private.public_key()).hex()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    row = IssuerKey(
        kid=kid,
        purpose=purpose,
        alg=alg,
        public_der=codec.spki_der(private.public_key()),
        sealed_private=sealer.seal(pem, _aad(kid)),
        status=KeyStatus.active,
    )
    session.add(row)
    session.flush()
    versions.bump(session, trust=True)
    return row


def _active(session: Session, purpose: KeyPurpose) -> IssuerKey | None:
    return session.scalar(
        select(IssuerKey).where(IssuerKey.purpose == purpose, IssuerKey.status == KeyStatus.active).order_by(IssuerKey.id.desc()).limit(1)
    )


def active_issuer_key(session: Session, sealer: Sealer) -> IssuerKey:
    """The key that signs new passes; the first call of a fresh install creates root and issuer keys."""
    if _active(session, KeyPurpose.root) is None:
        _new_key(session, sealer, KeyPurpose.root)
    return _active(session, KeyPurpose.issuer) or _new_key(session, sealer, KeyPurpose.issuer)


def signing_key(row: IssuerKey, sealer: Sealer) -> COSEKeyInterface:
    pem = sealer.open(row.sealed_private, _aad(row.kid))
    return COSEKey.from_pem(pem, alg=codec.ALG_NAMES[row.alg] if row.alg != codec.ALG_EDDSA else "", kid=bytes.fromhex(row.kid))


def verifying_key(row: IssuerKey) -> COSEKeyInterface:
    public = serialization.load_der_public_key(row.public_der)
    return codec.cose_public_key(public, bytes.fromhex(row.kid))


def rotate(session: Session, sealer: Sealer, actor: Principal, alg: int = codec.ALG_EDDSA) -> IssuerKey:
    """Ed25519 by default; ES256 for relying parties whose readers only do P-256."""
    actor.require_district_admin()
    if alg not in _GENERATORS:
        raise InvalidInput(f"Issuer keys are EdDSA ({codec.ALG_EDDSA}) or ES256 ({codec.ALG_ES256}).", code="pass_key_alg_invalid")
    old = active_issuer_key(session, sealer)
    now = utcnow()
    last_exp = session.scalar(select(func.max(Pass.expires_at)).where(Pass.kid == old.kid))
    old.status, old.retired_at = KeyStatus.retired, now
    # SQLite hands back naive datetimes from aggregates; UTCDateTime only fixes whole columns.
    old.verify_until = max(now, last_exp.replace(tzinfo=now.tzinfo) if last_exp else now)
    session.flush()
    new = _new_key(session, sealer, KeyPurpose.issuer, alg)
    audit.append(
        session,
        audit.NewEvent(kind="pass_key.rotated", actor=actor.actor, entity_type="pass_issuer_key", entity_id=new.id, data={"new_kid": new.kid, "old_kid": old.kid, "old_verifies_until": rfc3339(old.verify_until)}),
    )
    return new


def withdraw(session: Session, kid: str, actor: Principal, reason: str) -> IssuerKey:
    actor.require_district_admin()
    if re.fullmatch(r"[0-9a-f]{16}", kid) is None:
        raise InvalidInput("A kid is 16 lower-case hex digits (the first 8 bytes of the key's SHA-256).", code="kid_invalid")
    row = session.scalar(select(IssuerKey).where(IssuerKey.kid == kid))
    if row is None:
        raise NotFound(f"No issuer key with kid {kid}.", code="pass_key_not_found")
    if row.purpose is KeyPurpose.root:
        raise Conflict("The root key signs the trust list; rotate it offline, do not withdraw it here.", code="pass_key_is_root")
    if row.status is not KeyStatus.withdrawn:
        row.status, row.retired_at = KeyStatus.withdrawn, row.retired_at or utcnow()
        versions.bump(session, trust=True)
        audit.append(
            session,
            audit.NewEvent(kind="pass_key.withdrawn", actor=actor.actor, entity_type="pass_issuer_key", entity_id=row.id, data={"kid": kid, "reason": reason}),
        )
    return row


@dataclass(frozen=True)
class TrustedKey:
    kid: bytes
    key: COSEKeyInterface
    status: KeyStatus
    verify_until: datetime | None

    def refusal(self, at: datetime) -> str | None:
        """Why this key may not verify a pass at ``at``, or None."""
        if self.status is KeyStatus.withdrawn:
            return "issuer_key_withdrawn"
        if self.status is KeyStatus.retired and self.verify_until is not None and at > self.verify_until:
            return "issuer_key_expired"
        return None


def trusted_keys(session: Session) -> dict[bytes, TrustedKey]:
    rows = session.scalars(select(IssuerKey).where(IssuerKey.purpose == KeyPurpose.issuer))
    return {bytes.fromhex(r.kid): TrustedKey(bytes.fromhex(r.kid), verifying_key(r), r.status, r.verify_until) for r in rows}


def trust_list(session: Session, sealer: Sealer) -> bytes:
    """A COSE_Sign1 by the root key over every issuer key and its state, for bridges and auditors."""
    active_issuer_key(session, sealer)
    root = _active(session, KeyPurpose.root)
    assert root is not None
    trust_version, _ = versions.read(session)
    rows = session.scalars(select(IssuerKey).where(IssuerKey.purpose == KeyPurpose.issuer).order_by(IssuerKey.id))
    body = {
        "version": trust_version,
        "iat": int(utcnow().timestamp()),
        "keys": [
            {
                "kid": bytes.fromhex(r.kid),
                "alg": r.alg,
                "spki": r.public_der,
                "status": r.status.value,
                "verify_until": int(r.verify_until.timestamp()) if r.verify_until else None,
            }
            for r in rows
        ],
    }
    return codec.sign(cbor2.dumps(body), signing_key(root, sealer))


def root_public_key(session: Session) -> IssuerKey | None:
    return _active(session, KeyPurpose.root)


def trust_anchor(session: Session, sealer: Sealer) -> dict[str, str]:
    """The root public key a bridge pins (it signs the trust list), and the SHA-256 of its DER that an
    installer compares out of band before pinning it (docs/device-api.md, "The trust anchor")."""
    active_issuer_key(session, sealer)  # a fresh install makes its root key with its first issuer key
    root = root_public_key(session)
    assert root is not None  # made just above
    return {
        "kid": root.kid,
        "alg": codec.ALG_NAMES[root.alg],
        "root_public_key": base64.b64encode(root.public_der).decode(),
        "sha256": hashlib.sha256(root.public_der).hexdigest(),
    }

