"""The audit trail as it concerns one person: which events name them, and their pseudonyms."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from idsvc.audit.chain import PERSON_ACTOR_PREFIX, PSEUDONYM_ACTOR_PREFIX
from idsvc.audit.models import AuditEvent
from idsvc.registry.models import Person


def naming_in_clear(person_ids: Iterable[int]) -> ColumnElement[bool]:
    """Events that still name these people by id: as the subject, the actor, or the entity."""
    ids = list(person_ids)
    return (
        AuditEvent.person_id.in_(ids)
        | AuditEvent.actor.in_([f"{PERSON_ACTOR_PREFIX}{i}" for i in ids])
        | ((AuditEvent.entity_type == "person") & AuditEvent.entity_id.in_(ids))
    )


def naming(person: Person) -> ColumnElement[bool]:
    """Every event about the person: by id, or by their audit pseudonym once pseudonymised."""
    which = naming_in_clear([person.id])
    if person.audit_pseudonym:
        which = which | (AuditEvent.subject == person.audit_pseudonym) | (AuditEvent.actor == PSEUDONYM_ACTOR_PREFIX + person.audit_pseudonym)
    return which


def pseudonym_lookup(session: Session) -> Callable[[Iterable[int]], dict[int, str]]:
    """People's audit pseudonyms; an id without one (erased, or never a person here) gets a fresh random one."""

    def lookup(person_ids: Iterable[int]) -> dict[int, str]:
        ids = set(person_ids)
        known = dict(session.execute(select(Person.id, Person.audit_pseudonym).where(Person.id.in_(ids), Person.audit_pseudonym.is_not(None))).all())
        return {i: known.get(i) or secrets.token_hex(16) for i in ids}

    return lookup
