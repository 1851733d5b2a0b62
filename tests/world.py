"""A small two-site world with a key for every role, built through the services as an operator would.

Tests use it to check scopes: two owners in one site, a tenant of each, a device per door, and a second
site whose admin must see nothing of the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from idsvc.auth import service as keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.registry import doors, people, schemas, sites, units
from idsvc.registry.models import DeviceKind, DoorKind, PersonKind


@dataclass
class World:
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def build_world(ctx: AppContext) -> World:
    w = World()
    now = utcnow()
    with ctx.db.session() as s:
        for tag in ("a", "b"):
            site = sites.create_site(s, OPERATOR, schemas.SiteIn(code=f"site-{tag}", name=f"Site {tag}", timezone="Asia/Shanghai"))
            building = sites.create_building(s, OPERATOR, schemas.BuildingIn(site_id=site.id, code="b1", name="Building 1"))
            entrance = doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site.id, building_id=building.id, code="b1-main", name="B1 main", kind=DoorKind.entrance))
            w.ids |= {f"site_{tag}": site.id, f"building_{tag}": building.id, f"entrance_{tag}": entrance.id}
        site_a, building_a = w.ids["site_a"], w.ids["building_a"]
        for n in (1, 2):
            owner = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site_a, display_name=f"Owner {n}", kind=PersonKind.owner))
            unit = units.register_unit(s, OPERATOR, schemas.UnitIn(building_id=building_a, label=f"10{n}", owner_id=owner.id))
            door = doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site_a, unit_id=unit.id, code=f"u10{n}", name=f"Flat 10{n}", kind=DoorKind.unit_door))
            tenant = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site_a, display_name=f"Tenant {n}", kind=PersonKind.tenant))
            grant = units.add_tenant(s, OPERATOR, unit.id, schemas.TenancyIn(person_id=tenant.id, valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30)))
            device = doors.create_device(s, OPERATOR, schemas.DeviceIn(site_id=site_a, code=f"lock-10{n}", name=f"Lock 10{n}", kind=DeviceKind.lock, door_ids=[door.id]))
            w.ids |= {f"owner{n}": owner.id, f"unit{n}": unit.id, f"door{n}": door.id, f"tenant{n}": tenant.id, f"grant{n}": grant.id, f"device{n}": device.id}
        bindings = {
            "district": dict(role=Role.district_admin),
            "admin_a": dict(role=Role.site_admin, site_id=site_a),
            "admin_b": dict(role=Role.site_admin, site_id=w.ids["site_b"]),
            "owner1": dict(role=Role.owner, person_id=w.ids["owner1"]),
            "owner2": dict(role=Role.owner, person_id=w.ids["owner2"]),
            "tenant1": dict(role=Role.tenant, person_id=w.ids["tenant1"]),
            "tenant2": dict(role=Role.tenant, person_id=w.ids["tenant2"]),
            "device1": dict(role=Role.device, device_id=w.ids["device1"]),
        }
        for who, binding in bindings.items():
            role = binding.pop("role")
            w.tokens[who] = keys.issue_key(s, OPERATOR, role, label=who, **binding).token  # type: ignore[arg-type]
    return w
