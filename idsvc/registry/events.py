"""Audit helpers for registry changes: one event per change, named ``<entity>.<verb>``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.auth.principal import Principal


def record(
    session: Session,
    principal: Principal,
    kind: str,
    *,
    entity_type: str,
    entity_id: int,
    site_id: int | None,
    unit_id: int | None = None,
    door_id: int | None = None,
    person_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    audit.append(
        session,
        audit.NewEvent(
            kind=kind,
            actor=principal.actor,
            site_id=site_id,
            unit_id=unit_id,
            door_id=door_id,
            person_id=person_id,
            entity_type=entity_type,
            entity_id=entity_id,
            data=data or {},
        ),
    )


def changes(model: Any, patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a partial update and return {field: [old, new]} for what actually changed."""
    changed = {}
    for field, value in patch.items():
        old = getattr(model, field)
        if old != value:
            setattr(model, field, value)
            changed[field] = [getattr(old, "value", old), getattr(value, "value", value)]
    return changed
