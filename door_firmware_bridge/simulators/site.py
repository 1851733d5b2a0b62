"""A small site in the service's database for tests, benchmarks and the demo, built through its services.

A flat door (unit door group) with a tenant, and a park gate lane (its own door group) with an
employee and a registered van; one bridge device bound to both doors, with its API key; the pinned
root key; static passes for the tenant and the employee. Needs direct database access (an operator's).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from door_firmware_bridge.offline import FEED_FILE
from idsvc.auth import service as auth_keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.faces import service as faces
from idsvc.faces.models import ConsentPurpose
from idsvc.faces.policy import FaceOnlyCheck
from idsvc.passes import issuing, keys
from idsvc.registry import doors, grants, people, schemas, scope, sites, units
from idsvc.registry.models import DeviceKind, DoorKind, FaceMode, Grant, Person, PersonKind, Status
from idsvc.sync import feed

VAN_PLATE = "粤B12345"


@dataclass
class Site:
    ctx: AppContext
    ids: dict[str, int] = field(default_factory=dict)
    bridge_key: str = ""
    root_spki: str = ""  # base64 DER, for the bridge config's offline.root_public_key
    tenant_pass: str = ""
    tenant_pass_id: int = 0
    employee_pass: str = ""

    def issue_pass(self, person: str, lifetime: timedelta = timedelta(days=7)) -> tuple[int, str]:
        with self.ctx.db.session() as s:
            issued = issuing.issue(s, self.ctx.sealer, OPERATOR, self.ids[person], lifetime=lifetime)
            return issued.row.id, issued.text

    def set_pass_status(self, pass_row_id: int, status_value: str) -> None:
        with self.ctx.db.session() as s:
            issuing.change_status(s, OPERATOR, pass_row_id, Status(status_value), "simulated")

    def pseudonym(self, person: str) -> str:
        """The person's feed pseudonym in hex: how terminals and the feed name them."""
        with self.ctx.db.session() as s:
            row = s.get(Person, self.ids[person])
            assert row is not None
            return row.pseudonym

    def grant_of(self, subject: str, group: str) -> int:
        """The id of the grant of a person (or of the van) on a door group of the seed."""
        column = Grant.vehicle_id if subject == "van" else Grant.person_id
        with self.ctx.db.session() as s:
            grant_id = s.scalar(select(Grant.id).where(column == self.ids[subject], Grant.door_group_id == self.ids[group]))
            assert grant_id is not None
            return grant_id

    def set_grant_status(self, grant_id: int, verb: str) -> None:
        with self.ctx.db.session() as s:
            grants.change_status(s, OPERATOR, grant_id, verb, "simulated")

    def limit_uses(self, grant_id: int, max_uses: int) -> None:
        with self.ctx.db.session() as s:
            row = s.get(Grant, grant_id)
            assert row is not None
            row.max_uses = max_uses

    def uses(self, grant_id: int) -> int:
        with self.ctx.db.session() as s:
            row = s.get(Grant, grant_id)
            assert row is not None
            return row.uses

    def set_site_settings(self, settings: dict[str, object]) -> None:
        with self.ctx.db.session() as s:
            sites.update_site(s, OPERATOR, self.ids["site"], schemas.SitePatch(settings=settings))

    def site_key(self) -> str:
        """The site's feed key as `idsvc sync face-key` prints it (base64), for a bridge's offline.site_key_file."""
        with self.ctx.db.session() as s:
            return base64.b64encode(feed.site_face_key(s, self.ctx.sealer, self.ids["site"])).decode()

    def enrol_face(self, person: str, photos: list[bytes], *, offline: bool = True) -> None:
        """Consents recorded (face access, and the copy to the site's bridges unless ``offline`` is
        false), then a template from the photos (through the service's own enrolment)."""
        purposes = [ConsentPurpose.face_access] + ([ConsentPurpose.face_offline] if offline else [])
        with self.ctx.db.session() as s:
            for purpose in purposes:
                faces.record_consent(s, OPERATOR, self.ids[person], method="signed form", text_version="2026-01", language="zh-CN", purpose=purpose)
            faces.enrol(self.ctx, s, OPERATOR, self.ids[person], photos)

    def set_face_mode(self, door: str, mode: str) -> None:
        """How a door uses faces (face_only is checked against the pack's calibration, as the operator's command does)."""
        with self.ctx.db.session() as s:
            doors.update_door(s, OPERATOR, self.ids[door], schemas.DoorPatch(face_mode=FaceMode(mode)), face_only_check=FaceOnlyCheck(self.ctx.settings))

    def withdraw_offline_face(self, person: str) -> None:
        """The person withdraws the consent to copying their template to the bridges (the template stays for online use)."""
        with self.ctx.db.session() as s:
            faces.withdraw_consent(s, OPERATOR, self.ids[person], ConsentPurpose.face_offline)

    def add_doors(self, count: int, person: str = "tenant") -> list[int]:
        """``count`` (at most 200) more doors in one new door group that ``person`` may open, served by
        the bridge device instead of the flat and the gate (the many-locks benchmark)."""
        now = utcnow()
        with self.ctx.db.session() as s:
            created = [doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=self.ids["site"], building_id=self.ids["building"], code=f"lock-{i:04d}",
                                                                      name=f"Lock {i}", kind=DoorKind.entrance)).id for i in range(count)]
            group = doors.create_door_group(s, OPERATOR, schemas.DoorGroupIn(site_id=self.ids["site"], name=f"Many locks {len(created)}", door_ids=created))
            grants.create_grant(s, OPERATOR, schemas.GrantIn(door_group_id=group.id, person_id=self.ids[person], valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30)))
            doors.update_device(s, OPERATOR, self.ids["device"], schemas.DevicePatch(door_ids=created))
        return created

    def write_feed(self, folder: Path) -> None:
        """The site's signed feed snapshot, as a sync agent would drop it for a bridge (write, then rename)."""
        folder.mkdir(parents=True, exist_ok=True)
        with self.ctx.db.session() as s:
            _, document = feed.build(s, self.ctx.sealer, self.ctx.bus, self.ctx.settings, self.ids["site"])
        (folder / ".feed.tmp").write_bytes(document)
        (folder / ".feed.tmp").replace(folder / FEED_FILE)


def seed(ctx: AppContext, code: str = "park-1") -> Site:
    out = Site(ctx)
    now = utcnow()
    window = {"valid_from": now - timedelta(days=1), "valid_until": now + timedelta(days=30)}
    with ctx.db.session() as s:
        st = sites.create_site(s, OPERATOR, schemas.SiteIn(code=code, name=f"Park {code}", timezone="Asia/Shanghai"))
        building = sites.create_building(s, OPERATOR, schemas.BuildingIn(site_id=st.id, code="b1", name="Building 1"))
        owner = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=st.id, display_name="Owner", kind=PersonKind.owner))
        unit = units.register_unit(s, OPERATOR, schemas.UnitIn(building_id=building.id, label="101", owner_id=owner.id))
        flat = doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=st.id, unit_id=unit.id, code="u101", name="Flat 101", kind=DoorKind.unit_door))
        tenant = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=st.id, display_name="Tenant", kind=PersonKind.tenant))
        units.add_tenant(s, OPERATOR, unit.id, schemas.TenancyIn(person_id=tenant.id, **window))
        gate = doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=st.id, building_id=building.id, code="gate-in", name="Gate in", kind=DoorKind.gate_lane))
        gate_group = doors.create_door_group(s, OPERATOR, schemas.DoorGroupIn(site_id=st.id, name="Park gates", door_ids=[gate.id]))
        employee = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=st.id, display_name="Employee", kind=PersonKind.employee))
        van = people.create_vehicle(s, OPERATOR, schemas.VehicleIn(site_id=st.id, plate=VAN_PLATE, owner_person_id=employee.id))
        for subject in ({"person_id": employee.id}, {"vehicle_id": van.id}):
            grants.create_grant(s, OPERATOR, schemas.GrantIn(door_group_id=gate_group.id, **window, **subject))  # type: ignore[arg-type]
        bridge = doors.create_device(s, OPERATOR, schemas.DeviceIn(site_id=st.id, code="bridge-1", name="Bridge", kind=DeviceKind.bridge, door_ids=[flat.id, gate.id]))
        out.bridge_key = auth_keys.issue_key(s, OPERATOR, Role.device, label="bridge", device_id=bridge.id).token
        out.ids = {"site": st.id, "building": building.id, "unit": unit.id, "flat": flat.id, "gate": gate.id, "tenant": tenant.id, "employee": employee.id, "van": van.id,
                   "flat_group": scope.unit_door_group_id(s, unit.id) or 0, "gate_group": gate_group.id, "device": bridge.id}
        keys.active_issuer_key(s, ctx.sealer)
        root = keys.root_public_key(s)
        assert root is not None
        out.root_spki = base64.b64encode(root.public_der).decode()
    out.tenant_pass_id, out.tenant_pass = out.issue_pass("tenant")
    _, out.employee_pass = out.issue_pass("employee")
    return out
