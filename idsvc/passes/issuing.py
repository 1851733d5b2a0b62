"""Issue, renew, list and revoke passes for a person, with the same scope rules as the registry.

A pass carries the person's pseudonym, never their name; its scope lists the site, units and door
groups of the person's active grants at issue time (for offline bridges: the service itself checks
the live grants at every door). A pass's QR is rebuilt from its row when asked for again (byte for byte
with Ed25519, which is deterministic; an equally valid new signature with ES256), so no token is
stored.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import cbor2
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.db import utcnow
from idsvc.core.errors import Conflict, Forbidden, InvalidInput
from idsvc.core.sealing import Sealer
from idsvc.core.times import rfc3339
from idsvc.passes import codec, keys, status
from idsvc.passes.claims import PassClaims, PassType, Scope
from idsvc.passes.models import IssuerKey, KeyStatus, Pass
from idsvc.registry import scope
from idsvc.registry.models import Grant, Person, PersonKind, Status

DEFAULT_LIFETIME = timedelta(days=7)  # short-lived, silently renewed by the app
MAX_LIFETIME = timedelta(days=31)
_TYPE_OF_KIND = {
    PersonKind.tenant: PassType.tenant,
    PersonKind.owner: PassType.resident,
    PersonKind.resident: PassType.resident,
    PersonKind.employee: PassType.employee,
    PersonKind.staff: PassType.employee,
    PersonKind.visitor: PassType.visitor,
}


def get_person(session: Session, actor: Principal, person_id: int) -> Person:
    """The person, if the caller may manage their passes (same visibility as the registry: else 404)."""
    person = session.get(Person, person_id)
    if person is None or not scope.can_see_person(session, actor, person):
        raise scope.not_visible("person", person_id)
    return person


def get_pass(session: Session, actor: Principal, pass_row_id: int) -> Pass:
    row = session.get(Pass, pass_row_id)
    person = session.get(Person, row.person_id) if row is not None else None
    if row is None or person is None or not scope.can_see_person(session, actor, person):
        raise scope.not_visible("pass", pass_row_id)
    return row


def holder_cose_key(raw_public_key: bytes) -> dict[int, object]:
    """The phone's Ed25519 public key as the COSE_Key that goes into cnf."""
    if len(raw_public_key) != 32:
        raise InvalidInput("holder_public_key must be a 32-byte Ed25519 public key.", code="holder_key_invalid")
    return {1: 1, 3: codec.ALG_EDDSA, -1: 6, -2: raw_public_key}  # kty OKP, alg EdDSA, crv Ed25519, x


def _claims(row: Pass, person: Person) -> PassClaims:
    return PassClaims(
        sub=bytes.fromhex(person.pseudonym),
        pass_id=bytes.fromhex(row.pass_id),
        pass_type=row.pass_type,
        scope=Scope(row.scope["site_id"], tuple(row.scope["unit_ids"]), tuple(row.scope["door_group_ids"])),
        iat=int(row.issued_at.timestamp()),
        nbf=int(row.not_before.timestamp()),
        exp=int(row.expires_at.timestamp()),
        status_index=row.status_index,
        status_uri=status.STATUS_URI,
        holder_key=cbor2.loads(row.holder_key) if row.holder_key else None,
    )


def qr_text(session: Session, sealer: Sealer, row: Pass) -> str:
    """The pass's QR text, rebuilt from its row and signed again by the key that signed it."""
    key_row = session.scalar(select(IssuerKey).where(IssuerKey.kid == row.kid))
    if key_row is None or key_row.status is KeyStatus.withdrawn:
        raise Conflict("The key that signed this pass was withdrawn; issue a new pass.", code="pass_key_withdrawn")
    person = session.get(Person, row.person_id)
    assert person is not None
    token = codec.sign(cbor2.dumps(_claims(row, person).to_map()), keys.signing_key(key_row, sealer))
    return codec.encode_text(token)


@dataclass
class IssuedPass:
    row: Pass
    text: str


def issue(
    session: Session,
    sealer: Sealer,
    actor: Principal,
    person_id: int,
    *,
    pass_type: PassType | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
    holder_public_key: bytes | None = None,
    renewed_from: Pass | None = None,
) -> IssuedPass:
    person = get_person(session, actor, person_id)
    if person.status is not Status.active:
        raise Conflict(f"Person {person_id} is {person.status.value}; passes are only issued to active people.", code="person_inactive")
    if not timedelta(minutes=1) <= lifetime <= MAX_LIFETIME:
        raise InvalidInput(f"A pass lives between 1 minute and {MAX_LIFETIME.days} days.", code="pass_lifetime_invalid")
    now = utcnow().replace(microsecond=0)  # claims are whole seconds; keep the row equal to them
    grants = session.execute(
        select(Grant.unit_id, Grant.door_group_id).where(Grant.person_id == person.id, Grant.status == Status.active, Grant.valid_until > now)
    ).all()
    scope = {
        "site_id": person.site_id,
        "unit_ids": sorted({u for u, _ in grants if u is not None}),
        "door_group_ids": sorted({g for _, g in grants}),
    }
    key_row = keys.active_issuer_key(session, sealer)
    row = Pass(
        pass_id=secrets.token_hex(16),
        person_id=person.id,
        site_id=person.site_id,
        pass_type=pass_type or _TYPE_OF_KIND.get(person.kind, PassType.resident),
        status=Status.active,
        status_index=status.new_index(session),
        kid=key_row.kid,
        scope=scope,
        holder_key=cbor2.dumps(holder_cose_key(holder_public_key)) if holder_public_key else None,
        renewed_from_id=renewed_from.id if renewed_from else None,
        issued_at=now,
        not_before=now,
        expires_at=now + lifetime,
        created_by=actor.actor,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        audit.NewEvent(
            kind="pass.renewed" if renewed_from else "pass.issued",
            actor=actor.actor,
            site_id=person.site_id,
            person_id=person.id,
            entity_type="pass",
            entity_id=row.id,
            data={"pass_id": row.pass_id, "kid": row.kid, "expires_at": rfc3339(row.expires_at), "dynamic": holder_public_key is not None},
        ),
    )
    return IssuedPass(row, qr_text(session, sealer, row))


def renew(session: Session, sealer: Sealer, actor: Principal, pass_row_id: int, lifetime: timedelta = DEFAULT_LIFETIME) -> IssuedPass:
    """A fresh pass with the same holder key and type; the old one stays valid until it expires."""
    old = get_pass(session, actor, pass_row_id)
    if old.status is not Status.active:
        raise Conflict(f"Pass {pass_row_id} is {old.status.value}; it cannot be renewed.", code="pass_not_active")
    holder = cbor2.loads(old.holder_key)[-2] if old.holder_key else None
    return issue(session, sealer, actor, old.person_id, pass_type=old.pass_type, lifetime=lifetime, holder_public_key=holder, renewed_from=old)

_STATUS_EVENT = {Status.revoked: "pass.revoked", Status.suspended: "pass.suspended", Status.active: "pass.reinstated"}


def list_for_person(session: Session, actor: Principal, person_id: int, include_expired: bool = False) -> list[Pass]:
    person = get_person(session, actor, person_id)
    stmt = select(Pass).where(Pass.person_id == person.id).order_by(Pass.id)
    if not include_expired:
        stmt = stmt.where(Pass.expires_at > utcnow())
    return list(session.scalars(stmt))


def change_status(session: Session, actor: Principal, pass_row_id: int, new_status: Status, reason: str) -> Pass:
    """Revoke, suspend or reinstate a pass. Tenants may revoke their own (lost phone), not reinstate."""
    row = get_pass(session, actor, pass_row_id)
    if actor.role is Role.tenant and new_status is not Status.revoked:
        raise Forbidden("A tenant may revoke their own pass, not suspend or reinstate it.", code="forbidden_role")
    if row.status is Status.revoked and new_status is not Status.revoked:
        raise Conflict("A revoked pass stays revoked; issue a new one.", code="pass_revoked")
    if status.set_status(session, row, new_status, reason):
        audit.append(
            session,
            audit.NewEvent(
                kind=_STATUS_EVENT[new_status],
                actor=actor.actor,
                site_id=row.site_id,
                person_id=row.person_id,
                entity_type="pass",
                entity_id=row.id,
                data={"pass_id": row.pass_id, "reason": reason},
            ),
        )
    return row


def pass_to_dict(row: Pass) -> dict[str, object]:
    return {
        "id": row.id,
        "pass_id": row.pass_id,
        "person_id": row.person_id,
        "site_id": row.site_id,
        "pass_type": row.pass_type.value,
        "status": row.status.value,
        "status_reason": row.status_reason,
        "kid": row.kid,
        "scope": row.scope,
        "dynamic": row.holder_key is not None,
        "issued_at": rfc3339(row.issued_at),
        "not_before": rfc3339(row.not_before),
        "expires_at": rfc3339(row.expires_at),
        "renewed_from_id": row.renewed_from_id,
    }
