"""Administrative revocation, suspension and reinstatement of passes, people, grants, devices and keys.

Each verb delegates to the service that owns the row (passes.issuing, registry.grants, faces.service,
auth.service, passes.keys) and adds only what spans several of them: revoking a person revokes
their passes and grants and deletes their face templates in one transaction. Reason and actor go
to the audit trail. Propagation needs no call here: sync/changes.py announces every committed
status change to the deny set, all nodes and the bridges' feed.

Scopes are the registry's: district admins everywhere, site admins in their site, owners only the
tenancy grants of their own units (through registry.grants), tenants only their own pass.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.auth import service as api_keys
from idsvc.auth.models import ApiKey
from idsvc.auth.principal import Principal
from idsvc.core.errors import Conflict
from idsvc.faces import service as faces
from idsvc.passes import issuing, keys
from idsvc.passes.models import Pass
from idsvc.registry import grants, scope
from idsvc.registry.models import Device, Grant, Person, Status


class Verb(str, enum.Enum):
    revoke = "revoke"
    suspend = "suspend"
    reinstate = "reinstate"


_TARGET = {Verb.revoke: Status.revoked, Verb.suspend: Status.suspended, Verb.reinstate: Status.active}
_EVENT = {Verb.revoke: "revoked", Verb.suspend: "suspended", Verb.reinstate: "reinstated"}
# Which statuses a verb may start from. A revoked person may come back (new grants and passes are
# then needed: what was revoked stays revoked); a revoked device's keys are gone, so it may not.
_PERSON_FROM = {Verb.revoke: {Status.active, Status.suspended}, Verb.suspend: {Status.active}, Verb.reinstate: {Status.suspended, Status.revoked}}
_DEVICE_FROM = {Verb.revoke: {Status.active, Status.suspended}, Verb.suspend: {Status.active}, Verb.reinstate: {Status.suspended}}


@dataclass
class Outcome:
    entity: str
    id: int | str
    status: str
    cascade: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "id": self.id, "status": self.status, "cascade": self.cascade}


# Every verb function has this shape: (session, actor, id, verb, reason) -> Outcome.
Change = Callable[[Session, Principal, Any, Verb, str], Outcome]


def _check_transition(current: Status, verb: Verb, allowed: dict[Verb, set[Status]], what: str) -> None:
    if current not in allowed[verb]:
        raise Conflict(f"A {current.value} {what} cannot be {_EVENT[verb]}.", code="invalid_transition")


def change_pass(session: Session, actor: Principal, pass_row_id: int, verb: Verb, reason: str) -> Outcome:
    row = issuing.change_status(session, actor, pass_row_id, _TARGET[verb], reason)
    return Outcome("pass", row.id, row.status.value)


def change_grant(session: Session, actor: Principal, grant_id: int, verb: Verb, reason: str) -> Outcome:
    row = grants.change_status(session, actor, grant_id, verb.value, reason)
    return Outcome("grant", row.id, row.status.value)


def change_person(session: Session, actor: Principal, person_id: int, verb: Verb, reason: str) -> Outcome:
    """Suspending a person denies them everywhere (online: check_access and the deny set; offline:
    the feed's people list) and is undone by reinstating. Revoking also revokes every pass and grant
    they hold and deletes their face templates (privacy.md: nothing kept that no grant needs)."""
    person = session.get(Person, person_id)
    if person is None or not scope.can_see_person(session, actor, person):
        raise scope.not_visible("person", person_id)
    actor.require_site_admin(person.site_id)
    _check_transition(person.status, verb, _PERSON_FROM, "person")
    person.status = _TARGET[verb]
    cascade: dict[str, int] = {}
    if verb is Verb.revoke:
        live_passes = session.scalars(select(Pass.id).where(Pass.person_id == person.id, Pass.status != Status.revoked)).all()
        for pass_row_id in live_passes:
            issuing.change_status(session, actor, pass_row_id, Status.revoked, reason)
        live_grants = session.scalars(select(Grant.id).where(Grant.person_id == person.id, Grant.status != Status.revoked)).all()
        for grant_id in live_grants:
            grants.change_status(session, actor, grant_id, "revoke", reason)
        cascade = {"passes_revoked": len(live_passes), "grants_revoked": len(live_grants), "templates_deleted": faces.delete_template(session, actor, person.id)}
    audit.append(
        session,
        audit.NewEvent(
            kind=f"person.{_EVENT[verb]}", actor=actor.actor, site_id=person.site_id, person_id=person.id,
            entity_type="person", entity_id=person.id, data={"reason": reason, **cascade},
        ),
    )
    return Outcome("person", person.id, person.status.value, cascade)


def change_device(session: Session, actor: Principal, device_id: int, verb: Verb, reason: str) -> Outcome:
    """A suspended or revoked device's keys stop resolving (auth.service.resolve) on every node at
    once (the notice clears each node's key memory); revoking also revokes the keys themselves."""
    device = session.get(Device, device_id)
    if device is None or not actor.administers_site(device.site_id):
        raise scope.not_visible("device", device_id)
    _check_transition(device.status, verb, _DEVICE_FROM, "device")
    device.status = _TARGET[verb]
    cascade: dict[str, int] = {}
    if verb is Verb.revoke:
        key_ids = session.scalars(select(ApiKey.id).where(ApiKey.device_id == device.id, ApiKey.revoked_at.is_(None))).all()
        for key_id in key_ids:
            api_keys.revoke_key(session, actor, key_id)
        cascade = {"api_keys_revoked": len(key_ids)}
    audit.append(
        session,
        audit.NewEvent(
            kind=f"device.{_EVENT[verb]}", actor=actor.actor, site_id=device.site_id, entity_type="device",
            entity_id=device.id, data={"reason": reason, **cascade},
        ),
    )
    return Outcome("device", device.id, device.status.value, cascade)


def withdraw_issuer_key(session: Session, actor: Principal, kid: str, reason: str) -> Outcome:
    """Every pass the key signed fails verification from now on (trust list and deny set)."""
    row = keys.withdraw(session, kid, actor, reason)
    return Outcome("issuer_key", row.kid, row.status.value)
