"""Door and device alarms from the events bridges upload (``POST /v1/device/events``).

A stored event whose data says ``"alarm": true`` raises (or repeats) the alarm of its type at its
door (``door:<id>``), or at the reporting device (``device:<id>``) when it names no door (a stale
offline cache). Events that end a condition (``device_online``, ``door_closed``, ``cache_fresh``)
clear the alarm they ended. Runs inside the upload's transaction (device_events.service.on_stored).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.alarms import catalogue, service
from idsvc.device_events import service as device_events
from idsvc.device_events.models import DeviceEvent
from idsvc.registry.models import Device, Door
from idsvc.core.bus import Bus


def source_of(event: DeviceEvent) -> str:
    return f"door:{event.door_id}" if event.door_id is not None else f"device:{event.device_id}"


def from_device_events(session: Session, bus: Bus, events: Sequence[DeviceEvent]) -> None:
    relevant = [e for e in events if e.data.get("alarm") is True or e.kind in catalogue.CLEARED_BY_EVENT]
    if not relevant:
        return
    doors = {d.id: d for d in session.scalars(select(Door).where(Door.id.in_({e.door_id for e in relevant if e.door_id is not None})))}
    devices = {d.id: d for d in session.scalars(select(Device).where(Device.id.in_({e.device_id for e in relevant})))}
    for event in sorted(relevant, key=lambda e: e.at):
        source = source_of(event)
        if event.kind in catalogue.CLEARED_BY_EVENT:
            service.normal(session, bus, source, catalogue.CLEARED_BY_EVENT[event.kind], event.at, reason=event.kind)
            continue
        door = doors.get(event.door_id) if event.door_id is not None else None
        device = devices.get(event.device_id)
        site_id = door.site_id if door else device.site_id if device else None
        if site_id is None:
            continue  # the door or device was deleted meanwhile; the event itself is stored and audited
        data = {k: v for k, v in event.data.items() if k != "alarm"} | {"event_id": event.event_id}
        signal = service.Signal(
            source=source, type=event.kind, site_id=site_id, at=event.at, building_id=door.building_id if door else None,
            unit_id=door.unit_id if door else None, door_id=event.door_id, device_id=event.device_id, data=data,
        )
        service.raise_alarm(session, bus, signal, actor=f"device:{event.device_id}")


device_events.on_stored("alarms", from_device_events)
