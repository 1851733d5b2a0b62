"""Store uploaded device events exactly once and append each to the audit trail in the same transaction.

Bridges upload at least once (they retry until they see an answer), so the unique ``event_id`` is
what makes the trail exactly-once: ids already stored are reported as duplicates and skipped. Two
uploads of the same batch racing each other end in a unique-constraint error for the loser, which
retries and then finds them stored.

Domains above this one react to stored events inside the same transaction through
:func:`on_stored` (the alarm core turns ``"alarm": true`` events into alarms), so an event and what
follows from it commit together, and a re-uploaded event, being a duplicate, is not acted on twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.context import ServiceContext
from idsvc.device_events.models import DeviceEvent
from idsvc.registry.models import Door
from idsvc.core.bus import Bus

_ATTEMPTS = 3
StoredHandler = Callable[[Session, Bus, Sequence[DeviceEvent]], None]
_handlers: dict[str, StoredHandler] = {}


def on_stored(name: str, handler: StoredHandler) -> None:
    """Call ``handler(session, bus, rows)`` with each batch of newly stored events, before commit."""
    _handlers[name] = handler


@dataclass(frozen=True)
class Incoming:
    event_id: str
    kind: str
    at: datetime
    door_id: int | None
    person_id: int | None
    data: dict[str, Any]


@dataclass
class IngestResult:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # event id -> reason


def ingest(ctx: ServiceContext, caller: Principal, events: list[Incoming]) -> IngestResult:
    caller.require_role(Role.device)
    assert caller.device_id is not None
    for attempt in range(_ATTEMPTS):
        try:
            return _ingest_once(ctx, caller, events)
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _ingest_once(ctx: ServiceContext, caller: Principal, events: list[Incoming]) -> IngestResult:
    result = IngestResult()
    with ctx.db.session() as session:
        ids = [e.event_id for e in events]
        known = set(session.scalars(select(DeviceEvent.event_id).where(DeviceEvent.event_id.in_(ids))))
        doors = {d.id: d for d in session.scalars(select(Door).where(Door.id.in_({e.door_id for e in events if e.door_id is not None})))}
        fresh: list[Incoming] = []
        for event in events:
            if event.event_id in known:
                result.duplicates.append(event.event_id)
            elif event.door_id is not None and event.door_id not in caller.door_ids:
                # A device reports only for its own doors, like every other device call.
                result.rejected[event.event_id] = "door_not_of_device"
            elif event.event_id in {e.event_id for e in fresh}:
                result.duplicates.append(event.event_id)  # the same id twice in one batch
            else:
                fresh.append(event)
        rows = audit.append(
            session,
            *(
                audit.NewEvent(
                    kind=f"device.{e.kind}",
                    actor=caller.actor,
                    at=e.at,
                    site_id=doors[e.door_id].site_id if e.door_id in doors else None,
                    unit_id=doors[e.door_id].unit_id if e.door_id in doors else None,
                    door_id=e.door_id,
                    person_id=e.person_id,
                    entity_type="device_event",
                    data={"event_id": e.event_id, **e.data},
                )
                for e in fresh
            ),
        )
        stored = [
            DeviceEvent(
                event_id=event.event_id,
                device_id=caller.device_id,
                site_id=row.site_id,
                door_id=event.door_id,
                kind=event.kind,
                at=event.at,
                audit_seq=row.seq,
                data=event.data,
            )
            for event, row in zip(fresh, rows, strict=True)
        ]
        session.add_all(stored)
        result.stored.extend(e.event_id for e in fresh)
        session.flush()
        for handler in _handlers.values():
            handler(session, ctx.bus, stored)
    return result
