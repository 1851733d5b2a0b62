"""Issue, resolve and revoke API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.auth.models import ApiKey, Role
from idsvc.auth.principal import Principal
from idsvc.auth.subjects import directory
from idsvc.core.db import utcnow
from idsvc.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated

TOKEN_PREFIX = "idsvc_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class IssuedKey:
    key: ApiKey
    token: str  # shown once, never stored


def _subject_site(session: Session, role: Role, site_id: int | None, person_id: int | None, device_id: int | None) -> int | None:
    """Check that the binding makes sense for the role and return the site it is scoped to."""
    subjects = directory()
    if role is Role.district_admin:
        if person_id is not None and subjects.person(session, person_id) is None:
            raise NotFound(f"Person {person_id} does not exist.", code="person_not_found")
        return None
    if role is Role.device:
        device = subjects.device(session, device_id) if device_id is not None else None
        if device is None:
            raise InvalidInput("A device key needs an existing device_id.", code="device_required")
        if device.revoked:
            raise Conflict("This device is revoked; register the replacement device instead.", code="device_revoked")
        return device.site_id
    if role in (Role.owner, Role.tenant):
        person = subjects.person(session, person_id) if person_id is not None else None
        if person is None:
            raise InvalidInput(f"An {role.value} key needs an existing person_id.", code="person_required")
        if person.revoked:
            raise Conflict("This person is revoked; reinstate them first.", code="person_revoked")
        return person.site_id
    # site_admin
    if site_id is None or not subjects.site_exists(session, site_id):
        raise InvalidInput("A site_admin key needs an existing site_id.", code="site_required")
    if person_id is not None:
        person = subjects.person(session, person_id)
        if person is None or person.site_id != site_id:
            raise InvalidInput("person_id must be a person of that site.", code="person_not_in_site")
    return site_id


def issue_key(
    session: Session,
    actor: Principal,
    role: Role,
    *,
    site_id: int | None = None,
    person_id: int | None = None,
    device_id: int | None = None,
    label: str = "",
    expires_at: datetime | None = None,
) -> IssuedKey:
    scope_site = _subject_site(session, role, site_id, person_id, device_id)
    # Who may mint which key: nobody can hand out more than they hold.
    if role is Role.district_admin:
        actor.require_district_admin()
    elif scope_site is not None:
        actor.require_site_admin(scope_site)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expires_at is in the past.", code="expiry_in_past")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        token_hash=hash_token(token),
        token_prefix=token[: len(TOKEN_PREFIX) + 6],
        role=role,
        label=label,
        site_id=scope_site,
        person_id=person_id if role is not Role.device else None,
        device_id=device_id if role is Role.device else None,
        created_by=actor.actor,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    audit.append(
        session,
        audit.NewEvent(
            kind="api_key.created",
            actor=actor.actor,
            site_id=scope_site,
            person_id=key.person_id,
            entity_type="api_key",
            entity_id=key.id,
            data={"role": role.value, "label": label, "device_id": key.device_id, "prefix": key.token_prefix},
        ),
    )
    return IssuedKey(key, token)


def revoke_key(session: Session, actor: Principal, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} does not exist.", code="api_key_not_found")
    if key.role is Role.district_admin or key.site_id is None:
        actor.require_district_admin()
    else:
        actor.require_site_admin(key.site_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.append(
            session,
            audit.NewEvent(kind="api_key.revoked", actor=actor.actor, site_id=key.site_id, person_id=key.person_id, entity_type="api_key", entity_id=key.id),
        )
    return key


def list_keys(session: Session, actor: Principal, site_id: int | None) -> list[ApiKey]:
    """Keys of one site (default: a site admin's own), or of every site for a district admin."""
    if site_id is None and not actor.is_district_admin:
        site_id = actor.site_id
    stmt = select(ApiKey).order_by(ApiKey.id)
    if site_id is not None:
        actor.require_site_admin(site_id)
        stmt = stmt.where(ApiKey.site_id == site_id)
    else:
        actor.require_district_admin()
    return list(session.scalars(stmt))


def _refused() -> Unauthenticated:
    return Unauthenticated("The API key is missing, unknown, expired or revoked.", code="invalid_credentials")


def resolve(session: Session, token: str) -> Principal:
    """Turn a presented token into a principal, or refuse with one generic message."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise _refused()
    return resolve_hash(session, hash_token(token))


def resolve_hash(session: Session, token_hash: str) -> Principal:
    """The principal of a key known by its hash (the console's session holds the hash, never the key)."""
    refused = _refused()
    key = session.scalar(select(ApiKey).where(ApiKey.token_hash == token_hash))
    if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= utcnow()):
        raise refused
    door_ids: frozenset[int] = frozenset()
    if key.role is Role.device:
        device = directory().device(session, key.device_id) if key.device_id is not None else None
        if device is None or not device.active:
            raise Unauthenticated("This device is suspended or revoked.", code="device_inactive")
        door_ids = device.door_ids
    elif key.person_id is not None:
        person = directory().person(session, key.person_id)
        if person is None or person.revoked:
            raise refused
    return Principal(role=key.role, key_id=key.id, site_id=key.site_id, person_id=key.person_id, device_id=key.device_id, door_ids=door_ids)
