"""The demo site that ``idsvc serve --demo`` seeds into an empty database, for the README walk-through.

Everything is created through the same services as the API uses, so the demo's audit trail is real.
The demo keys are written to ``<data_dir>/demo-keys.json`` (mode 0600) and printed once.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

from sqlalchemy import select

from idsvc.auth import service as keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR
from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.registry import doors, people, schemas, sites, units
from idsvc.registry.models import DeviceKind, DoorKind, PersonKind, Site


def seed_demo(ctx: AppContext) -> dict[str, object]:
    now = utcnow()
    with ctx.db.session() as s:
        site = sites.create_site(s, OPERATOR, schemas.SiteIn(code="demo-village", name="Demo Village", timezone="Asia/Shanghai"))
        building = sites.create_building(s, OPERATOR, schemas.BuildingIn(site_id=site.id, code="b3", name="Building 3"))
        entrance = doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site.id, building_id=building.id, code="b3-main", name="Building 3 main door", kind=DoorKind.entrance))
        gate = doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site.id, code="gate-east-in", name="East gate, inbound lane", kind=DoorKind.gate_lane))
        gates = doors.create_door_group(s, OPERATOR, schemas.DoorGroupIn(site_id=site.id, name="park gates", door_ids=[gate.id]))
        owner = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site.id, display_name="Landlord Li", kind=PersonKind.owner))
        unit = units.register_unit(s, OPERATOR, schemas.UnitIn(building_id=building.id, label="3-201", owner_id=owner.id))
        flat_door = doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site.id, unit_id=unit.id, code="b3-201", name="Flat 3-201", kind=DoorKind.unit_door))
        tenant = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site.id, display_name="Tenant Wang", kind=PersonKind.tenant))
        units.add_tenant(s, OPERATOR, unit.id, schemas.TenancyIn(person_id=tenant.id, valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=180)))
        lock = doors.create_device(s, OPERATOR, schemas.DeviceIn(site_id=site.id, code="lock-3-201", name="Smart lock 3-201", kind=DeviceKind.lock, door_ids=[flat_door.id]))
        terminal = doors.create_device(s, OPERATOR, schemas.DeviceIn(site_id=site.id, code="gate-east", name="East gate terminal", kind=DeviceKind.gate_terminal, door_ids=[gate.id]))
        # The building entrance is in every unit's door group, so the tenant's pass opens it too.
        reader = doors.create_device(s, OPERATOR, schemas.DeviceIn(site_id=site.id, code="reader-b3-main", name="Building 3 entrance reader", kind=DeviceKind.qr_reader, door_ids=[entrance.id]))
        tokens = {
            "district_admin": keys.issue_key(s, OPERATOR, Role.district_admin, label="demo district admin").token,
            "site_admin": keys.issue_key(s, OPERATOR, Role.site_admin, site_id=site.id, label="demo site admin").token,
            "owner": keys.issue_key(s, OPERATOR, Role.owner, person_id=owner.id, label="demo landlord").token,
            "tenant": keys.issue_key(s, OPERATOR, Role.tenant, person_id=tenant.id, label="demo tenant").token,
            "lock": keys.issue_key(s, OPERATOR, Role.device, device_id=lock.id, label="demo lock").token,
            "gate_terminal": keys.issue_key(s, OPERATOR, Role.device, device_id=terminal.id, label="demo gate").token,
            "entrance_reader": keys.issue_key(s, OPERATOR, Role.device, device_id=reader.id, label="demo entrance reader").token,
        }
        return {
            "site_id": site.id,
            "building_id": building.id,
            "unit_id": unit.id,
            "unit_code": unit.code,
            "doors": {"building_entrance": entrance.id, "flat": flat_door.id, "east_gate": gate.id},
            "door_groups": {"park_gates": gates.id},
            "people": {"owner": owner.id, "tenant": tenant.id},
            "devices": {"lock": lock.id, "gate_terminal": terminal.id, "entrance_reader": reader.id},
            "keys": tokens,
        }


def seed_demo_if_empty(settings: Settings) -> None:
    ctx = AppContext.from_settings(settings)
    try:
        with ctx.db.session() as s:
            if s.scalar(select(Site.id).limit(1)) is not None:
                print(f"demo: the database has sites already; keys of an earlier demo are in {settings.data_dir / 'demo-keys.json'}")
                return
        demo = seed_demo(ctx)
    finally:
        ctx.close()
    path = settings.data_dir / "demo-keys.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(demo, handle, indent=2)
    print(f"demo site seeded; ids and API keys written to {path}:")
    print(json.dumps(demo, indent=2))
    print("the console is at / (http://127.0.0.1:8080/ by default): sign in with the site_admin key for the staff screen, "
          "owner for the landlord's units, district_admin for the statistics (docs/console.md)")
