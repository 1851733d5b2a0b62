"""Operator commands for the registry. They act as a district admin directly on the database."""

from __future__ import annotations

import typer

from idsvc.auth.principal import OPERATOR
from idsvc.core.cli import ROW_ID, cli_context, parse, print_json, run
from idsvc.core.db import utcnow
from idsvc.registry import access, doors, grants, people, schemas, sites, units
from idsvc.registry.models import DeviceKind, DoorKind, FaceMode, PersonKind, UnitKind

UNTIL_HELP = "End of validity, ISO 8601 with a zone, e.g. 2026-12-01T00:00:00+08:00"


def register(app: typer.Typer) -> None:
    site = typer.Typer(no_args_is_help=True, help="Sites (communities, industrial parks).")
    building = typer.Typer(no_args_is_help=True, help="Buildings of a site.")
    unit = typer.Typer(no_args_is_help=True, help="Units: flats and shops, each with a stable code.")
    door = typer.Typer(no_args_is_help=True, help="Doors, gate lanes and door groups.")
    person = typer.Typer(no_args_is_help=True, help="People and vehicles.")
    device = typer.Typer(no_args_is_help=True, help="Locks, readers, cameras and bridges.")
    grant = typer.Typer(no_args_is_help=True, help="Grants and tenancies.")
    for sub, name in ((site, "site"), (building, "building"), (unit, "unit"), (door, "door"), (person, "person"), (device, "device"), (grant, "grant")):
        app.add_typer(sub, name=name)

    @site.command("create", help='Create a site: a community or an industrial park, with its time zone.')
    def site_create(code: str, name: str, timezone: str = typer.Option("Asia/Shanghai", help="IANA time zone")) -> None:
        body = parse(schemas.SiteIn, code=code, name=name, timezone=timezone)
        run(lambda s: schemas.SiteOut.model_validate(sites.create_site(s, OPERATOR, body)))

    @site.command("list", help='List the sites.')
    def site_list() -> None:
        run(lambda s: [schemas.SiteOut.model_validate(x).model_dump(mode="json") for x in sites.list_sites(s, OPERATOR)])

    @building.command("create", help='Add a building to a site.')
    def building_create(code: str, name: str, site_id: int = typer.Option(..., "--site", **ROW_ID)) -> None:
        body = parse(schemas.BuildingIn, site_id=site_id, code=code, name=name)
        run(lambda s: schemas.BuildingOut.model_validate(sites.create_building(s, OPERATOR, body)))

    @unit.command("register", help='Register a unit (flat or shop) in a building; it gets a stable code and its own door group.')
    def unit_register(
        label: str,
        building_id: int = typer.Option(..., "--building", **ROW_ID),
        owner_id: int = typer.Option(None, "--owner", **ROW_ID, help="Person id of the landlord."),
        kind: UnitKind = typer.Option(UnitKind.flat),
    ) -> None:
        body = parse(schemas.UnitIn, building_id=building_id, label=label, owner_id=owner_id, kind=kind)
        run(lambda s: schemas.UnitOut.of(s, units.register_unit(s, OPERATOR, body)))

    @unit.command("list", help='List units (of one site with --site).')
    def unit_list(site_id: int = typer.Option(None, "--site", **ROW_ID)) -> None:
        run(lambda s: [schemas.UnitOut.of(s, u).model_dump(mode="json") for u in units.list_units(s, OPERATOR, site_id)])

    @door.command("create", help='Create a door: a unit door, a building entrance or a park gate lane.')
    def door_create(
        code: str,
        name: str,
        site_id: int = typer.Option(..., "--site", **ROW_ID),
        kind: DoorKind = typer.Option(...),
        building_id: int = typer.Option(None, "--building", **ROW_ID),
        unit_id: int = typer.Option(None, "--unit", **ROW_ID),
    ) -> None:
        body = parse(schemas.DoorIn, site_id=site_id, code=code, name=name, kind=kind, building_id=building_id, unit_id=unit_id)
        run(lambda s: schemas.DoorOut.model_validate(doors.create_door(s, OPERATOR, body)))

    @door.command("face-mode")
    def door_face_mode(door_id: int = typer.Argument(..., **ROW_ID), mode: FaceMode = typer.Argument(...)) -> None:
        """Set how a door uses faces (docs/faces.md). face_only is refused where the face pack cannot
        keep the site's targets for the people who may pass the door."""
        body = parse(schemas.DoorPatch, face_mode=mode)
        with cli_context() as ctx, ctx.db.session() as s:
            # The app wiring's context carries the faces domain's check; without it face_only is refused.
            check = getattr(ctx, "face_only_check", None)
            print_json(schemas.DoorOut.model_validate(doors.update_door(s, OPERATOR, door_id, body, face_only_check=check)).model_dump(mode="json"))

    @door.command("group")
    def door_group_create(name: str, site_id: int = typer.Option(..., "--site", **ROW_ID), door_ids: list[int] = typer.Option([], "--door", **ROW_ID)) -> None:
        """Create a door group (e.g. 'park gates') from --door ids."""
        body = parse(schemas.DoorGroupIn, site_id=site_id, name=name, door_ids=door_ids)
        run(lambda s: schemas.DoorGroupOut.of(doors.create_door_group(s, OPERATOR, body)))

    @person.command("create", help='Register a person (tenant, owner, employee, visitor, staff).')
    def person_create(
        display_name: str,
        site_id: int = typer.Option(..., "--site", **ROW_ID),
        kind: PersonKind = typer.Option(...),
        phone: str = typer.Option(None),
        external_ref: str = typer.Option(None, help="Your own id for this person (unique per site)."),
    ) -> None:
        body = parse(schemas.PersonIn, site_id=site_id, display_name=display_name, kind=kind, phone=phone, external_ref=external_ref)
        run(lambda s: schemas.PersonOut.of(s, people.create_person(s, OPERATOR, body)))

    @person.command("vehicle")
    def vehicle_create(plate: str, site_id: int = typer.Option(..., "--site", **ROW_ID), owner_id: int = typer.Option(None, "--owner", **ROW_ID)) -> None:
        """Register a vehicle plate."""
        body = parse(schemas.VehicleIn, site_id=site_id, plate=plate, owner_person_id=owner_id)
        run(lambda s: schemas.VehicleOut.model_validate(people.create_vehicle(s, OPERATOR, body)))

    @device.command("create", help="Register a lock, reader, camera or bridge for some of the site's doors.")
    def device_create(
        code: str,
        name: str,
        site_id: int = typer.Option(..., "--site", **ROW_ID),
        kind: DeviceKind = typer.Option(...),
        door_ids: list[int] = typer.Option([], "--door", **ROW_ID),
    ) -> None:
        body = parse(schemas.DeviceIn, site_id=site_id, code=code, name=name, kind=kind, door_ids=door_ids)
        run(lambda s: schemas.DeviceOut.of(doors.create_device(s, OPERATOR, body)))

    @grant.command("create", help='Grant a person or vehicle a door group from one time to another.')
    def grant_create(
        door_group_id: int = typer.Option(..., "--door-group", **ROW_ID),
        person_id: int = typer.Option(None, "--person", **ROW_ID),
        vehicle_id: int = typer.Option(None, "--vehicle", **ROW_ID),
        valid_from: str = typer.Option(None, "--from", help="Default: now."),
        valid_until: str = typer.Option(..., "--until", help=UNTIL_HELP),
        max_uses: int = typer.Option(None),
    ) -> None:
        body = parse(
            schemas.GrantIn, door_group_id=door_group_id, person_id=person_id, vehicle_id=vehicle_id,
            valid_from=valid_from or utcnow(), valid_until=valid_until, max_uses=max_uses,
        )
        run(lambda s: schemas.GrantOut.model_validate(grants.create_grant(s, OPERATOR, body)))

    @grant.command("tenant")
    def tenant_add(
        unit_id: int = typer.Option(..., "--unit", **ROW_ID),
        person_id: int = typer.Option(..., "--person", **ROW_ID),
        valid_from: str = typer.Option(None, "--from", help="Default: now."),
        valid_until: str = typer.Option(..., "--until", help=UNTIL_HELP),
    ) -> None:
        """Authorise a tenant for a unit's doors from one date to another."""
        body = parse(schemas.TenancyIn, person_id=person_id, valid_from=valid_from or utcnow(), valid_until=valid_until)
        run(lambda s: schemas.GrantOut.model_validate(units.add_tenant(s, OPERATOR, unit_id, body)))

    @grant.command("end-tenancy", help="End a tenant's tenancy of a unit (revokes its grants).")
    def tenant_end(unit_id: int = typer.Option(..., "--unit", **ROW_ID), person_id: int = typer.Option(..., "--person", **ROW_ID), reason: str = typer.Option("tenancy ended")) -> None:
        run(lambda s: [schemas.GrantOut.model_validate(g).model_dump(mode="json") for g in units.end_tenancy(s, OPERATOR, unit_id, person_id, reason)])

    @grant.command("check")
    def access_check(
        door_id: int = typer.Option(..., "--door", **ROW_ID),
        person_id: int = typer.Option(None, "--person", **ROW_ID),
        vehicle_id: int = typer.Option(None, "--vehicle", **ROW_ID),
        at: str = typer.Option(None, help="Default: now."),
    ) -> None:
        """May this person or vehicle pass the door at that time, and if not, why."""
        body = parse(schemas.AccessCheckIn, door_id=door_id, person_id=person_id, vehicle_id=vehicle_id, at=at)
        when = body.at or utcnow()
        run(lambda s: access.check_access(s, body.door_id, when, person_id=body.person_id, vehicle_id=body.vehicle_id).__dict__)
