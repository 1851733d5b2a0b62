"""Doors, door groups and devices: the physical side of a site."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.errors import Conflict, InvalidInput, NotFound
from idsvc.registry import events, schemas
from idsvc.registry.models import Building, Device, Door, DoorGroup, DoorKind, FaceMode, Unit
from idsvc.registry.scope import admin_listing, in_site, load, not_visible

# Raises Conflict when face_only is not safe at the door (the faces domain knows the model pack's
# calibration; the registry does not, so the caller hands the check in). None = refuse face_only.
FaceOnlyCheck = Callable[[Session, Door], None]


def _check_face_mode(session: Session, door: Door, face_only_check: FaceOnlyCheck | None) -> None:
    if door.face_mode is not FaceMode.face_only:
        return
    if face_only_check is None:
        raise Conflict("face_only cannot be checked here (no face engine); configure it through the service API.", code="face_only_unsafe")
    session.flush()  # the check counts the people of the door's groups, including a door just created
    face_only_check(session, door)


def _doors_of_site(session: Session, site_id: int, door_ids: Sequence[int]) -> list[Door]:
    if len(set(door_ids)) != len(door_ids):
        raise InvalidInput("door_ids repeats a door.", code="duplicate_door")
    doors = list(session.scalars(select(Door).where(Door.id.in_(door_ids)).order_by(Door.id))) if door_ids else []
    missing = set(door_ids) - {d.id for d in doors if d.site_id == site_id}
    if missing:
        raise NotFound(f"Doors {sorted(missing)} do not exist in this site.", code="door_not_found", details={"door_ids": sorted(missing)})
    return doors


SiteRow = TypeVar("SiteRow", Door, DoorGroup, Device)


def _admin_load(session: Session, principal: Principal, model: type[SiteRow], row_id: int, what: str) -> SiteRow:
    """Rows only site admins handle: others get the same 404 as for a missing row."""
    row = load(session, model, row_id, what)
    if not principal.administers_site(row.site_id):
        raise not_visible(what, row_id)
    return row


def create_door(session: Session, principal: Principal, body: schemas.DoorIn, *, face_only_check: FaceOnlyCheck | None = None) -> Door:
    principal.require_site_admin(body.site_id)
    building_id = body.building_id
    unit = None
    if body.unit_id is not None:
        unit = load(session, Unit, body.unit_id, "unit")
        if unit.site_id != body.site_id:
            raise NotFound(f"Unit {body.unit_id} does not exist in this site.", code="unit_not_found")
        if building_id is not None and building_id != unit.building_id:
            raise InvalidInput("building_id does not match the unit's building.", code="building_mismatch")
        building_id = unit.building_id
    elif building_id is not None:
        building = load(session, Building, building_id, "building")
        if building.site_id != body.site_id:
            raise NotFound(f"Building {building_id} does not exist in this site.", code="building_not_found")
    if session.scalar(select(Door.id).where(Door.site_id == body.site_id, Door.code == body.code)) is not None:
        raise Conflict(f"Door code '{body.code}' is taken in this site.", code="duplicate_code")
    door = Door(
        site_id=body.site_id, building_id=building_id, unit_id=body.unit_id, code=body.code, name=body.name, kind=body.kind, face_mode=body.face_mode
    )
    session.add(door)
    session.flush()
    # A unit's door joins the unit's group; a building entrance joins every unit group of the building.
    if unit is not None:
        groups = list(session.scalars(select(DoorGroup).where(DoorGroup.unit_id == unit.id)))
    elif building_id is not None and body.kind is DoorKind.entrance:
        groups = list(
            session.scalars(select(DoorGroup).join(Unit, Unit.id == DoorGroup.unit_id).where(Unit.building_id == building_id))
        )
    else:
        groups = []
    for group in groups:
        group.doors.append(door)
    _check_face_mode(session, door, face_only_check)
    events.record(
        session, principal, "door.created", entity_type="door", entity_id=door.id, site_id=door.site_id,
        unit_id=door.unit_id, door_id=door.id, data={**body.model_dump(mode="json"), "door_group_ids": [g.id for g in groups]},
    )
    return door


def list_doors(session: Session, principal: Principal, site_id: int | None = None) -> list[Door]:
    site = admin_listing(principal, site_id)
    return list(session.scalars(select(Door).where(*in_site(Door, site)).order_by(Door.id)))


def get_door(session: Session, principal: Principal, door_id: int) -> Door:
    return _admin_load(session, principal, Door, door_id, "door")


def update_door(
    session: Session, principal: Principal, door_id: int, body: schemas.DoorPatch, *, face_only_check: FaceOnlyCheck | None = None
) -> Door:
    door = get_door(session, principal, door_id)
    changed = events.changes(door, body.model_dump(exclude_unset=True, exclude_none=True))
    if "face_mode" in changed:
        _check_face_mode(session, door, face_only_check)
    if changed:
        events.record(session, principal, "door.updated", entity_type="door", entity_id=door.id, site_id=door.site_id, unit_id=door.unit_id, door_id=door.id, data=changed)
    return door


def create_door_group(session: Session, principal: Principal, body: schemas.DoorGroupIn) -> DoorGroup:
    principal.require_site_admin(body.site_id)
    if session.scalar(select(DoorGroup.id).where(DoorGroup.site_id == body.site_id, DoorGroup.name == body.name)) is not None:
        raise Conflict(f"A door group named '{body.name}' exists in this site.", code="duplicate_name")
    group = DoorGroup(site_id=body.site_id, name=body.name, doors=_doors_of_site(session, body.site_id, body.door_ids))
    session.add(group)
    session.flush()
    events.record(session, principal, "door_group.created", entity_type="door_group", entity_id=group.id, site_id=group.site_id, data=body.model_dump())
    return group


def list_door_groups(session: Session, principal: Principal, site_id: int | None = None) -> list[DoorGroup]:
    site = admin_listing(principal, site_id)
    return list(session.scalars(select(DoorGroup).where(*in_site(DoorGroup, site)).order_by(DoorGroup.id)))


def get_door_group(session: Session, principal: Principal, group_id: int) -> DoorGroup:
    return _admin_load(session, principal, DoorGroup, group_id, "door_group")


def set_door_group_doors(session: Session, principal: Principal, group_id: int, door_ids: list[int]) -> DoorGroup:
    group = get_door_group(session, principal, group_id)
    before = [d.id for d in group.doors]
    group.doors = _doors_of_site(session, group.site_id, door_ids)
    events.record(
        session, principal, "door_group.doors_set", entity_type="door_group", entity_id=group.id, site_id=group.site_id,
        unit_id=group.unit_id, data={"before": before, "after": sorted(door_ids)},
    )
    return group


def create_device(session: Session, principal: Principal, body: schemas.DeviceIn) -> Device:
    principal.require_site_admin(body.site_id)
    if session.scalar(select(Device.id).where(Device.site_id == body.site_id, Device.code == body.code)) is not None:
        raise Conflict(f"Device code '{body.code}' is taken in this site.", code="duplicate_code")
    device = Device(site_id=body.site_id, code=body.code, name=body.name, kind=body.kind, doors=_doors_of_site(session, body.site_id, body.door_ids))
    session.add(device)
    session.flush()
    events.record(session, principal, "device.created", entity_type="device", entity_id=device.id, site_id=device.site_id, data=body.model_dump(mode="json"))
    return device


def list_devices(session: Session, principal: Principal, site_id: int | None = None) -> list[Device]:
    site = admin_listing(principal, site_id)
    return list(session.scalars(select(Device).where(*in_site(Device, site)).order_by(Device.id)))


def get_device(session: Session, principal: Principal, device_id: int) -> Device:
    if principal.role is Role.device and principal.device_id == device_id:
        return load(session, Device, device_id, "device")
    return _admin_load(session, principal, Device, device_id, "device")


def update_device(session: Session, principal: Principal, device_id: int, body: schemas.DevicePatch) -> Device:
    device = _admin_load(session, principal, Device, device_id, "device")
    changed = events.changes(device, body.model_dump(exclude_unset=True, exclude_none=True, exclude={"door_ids"}))
    if body.door_ids is not None:
        before = [d.id for d in device.doors]
        device.doors = _doors_of_site(session, device.site_id, body.door_ids)
        if before != sorted(body.door_ids):
            changed["door_ids"] = [before, sorted(body.door_ids)]
    if changed:
        events.record(session, principal, "device.updated", entity_type="device", entity_id=device.id, site_id=device.site_id, data=changed)
    return device
