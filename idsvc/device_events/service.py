"""Store uploaded device events exactly once and append each to the audit trail in the same transaction.

Bridges upload at least once (they retry until they see an answer), so the unique ``event_id`` is
what makes the trail exactly-once: ids already stored are reported as duplicates and skipped. Two
uploads of the same batch racing each other end in a unique-constraint error for the loser, which
retries and then finds them stored. A re-sent event is the same event: an id already stored with
other content is refused (``event_id_reused``), never counted as a duplicate, so a device fault that
reuses ids cannot hide an event behind another. Events without a door (``bridge_started``,
``cache_stale``) belong to the device's site, so the site's admins see them.

An offline allow on a grant with a use limit (``access_granted`` with ``source: offline`` and the
grant in its versions, ``counts_uses: true``) is counted on that grant when stored: the bridge took
the use from its feed without asking, and the count reaches the bridges with the next feed.

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
from idsvc.core.bus import Bus
from idsvc.core.context import ServiceContext
from idsvc.device_events.models import DeviceEvent
from idsvc.registry.access import count_offline_use
from idsvc.registry.models import Device, Door

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


def offline_use(event: Incoming) -> int | None:
    """The grant an offline allow used up one use of, if it has a use limit."""
    versions = event.data.get("versions")
    if event.kind != "access_granted" or event.data.get("source") != "offline" or not isinstance(versions, dict):
        return None
    grant_id = versions.get("grant_id")
    return grant_id if versions.get("counts_uses") is True and isinstance(grant_id, int) and not isinstance(grant_id, bool) else None


def _same_event(row: DeviceEvent, event: Incoming) -> bool:
    """Whether a stored row is this upload again (times compared as instants, data as JSON values)."""
    return (row.kind, row.door_id, row.at, row.data) == (event.kind, event.door_id, event.at, event.data)


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
        batch: dict[str, list[Incoming]] = {}
        for event in events:
            batch.setdefault(event.event_id, []).append(event)
        known = {row.event_id: row for row in session.scalars(select(DeviceEvent).where(DeviceEvent.event_id.in_(batch)))}
        doors = {d.id: d for d in session.scalars(select(Door).where(Door.id.in_({e.door_id for e in events if e.door_id is not None})))}
        device = session.get(Device, caller.device_id)
        fresh: list[Incoming] = []
        for event_id, occurrences in batch.items():  # one answer per id
            event, stored = occurrences[0], known.get(event_id)
            if any(other != event for other in occurrences[1:]) or (stored is not None and not _same_event(stored, event)):
                result.rejected[event_id] = "event_id_reused"
            elif stored is not None:
                result.duplicates.append(event_id)
            elif event.door_id is not None and event.door_id not in caller.door_ids:
                # A device reports only for its own doors, like every other device call.
                result.rejected[event_id] = "door_not_of_device"
            else:
                fresh.append(event)
        site_of_device = device.site_id if device is not None else None
        rows = audit.append(
            session,
            *(
                audit.NewEvent(
                    kind=f"device.{e.kind}",
                    actor=caller.actor,
                    at=e.at,
                    site_id=doors[e.door_id].site_id if e.door_id in doors else site_of_device,
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
        for event in fresh:
            grant_id = offline_use(event)
            if grant_id is not None:
                count_offline_use(session, grant_id)
        session.flush()
        for handler in _handlers.values():
            handler(session, ctx.bus, stored)
    return result
