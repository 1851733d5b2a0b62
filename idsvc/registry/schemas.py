"""Request and response bodies of the registry API. Unknown fields are refused, not ignored."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.orm import Session

from idsvc.core.times import UtcDateTime
from idsvc.core.validation import Code, ExternalRef, JsonObject, Label, Name, Phone, Plate, Reason, RowId, Timestamp, TimeZoneName
from idsvc.registry import personal, site_settings
from idsvc.registry.models import Device, DeviceKind, DoorGroup, DoorKind, FaceMode, Person, PersonKind, Site, Status, Unit, UnitKind
from idsvc.registry.schedule import ScheduleWindow
from idsvc.registry.scope import unit_door_group_id


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SiteIn(In):
    code: Code
    name: Name
    timezone: TimeZoneName = "Asia/Shanghai"
    settings: Annotated[JsonObject, AfterValidator(site_settings.check)] = Field(default_factory=dict)


class SitePatch(In):
    name: Name | None = None
    timezone: TimeZoneName | None = None
    settings: Annotated[JsonObject, AfterValidator(site_settings.check)] | None = None


class SiteOut(Out):
    id: int
    code: str
    name: str
    timezone: str
    settings: dict[str, Any]
    created_at: UtcDateTime


class BuildingIn(In):
    site_id: RowId
    code: Code
    name: Name


class BuildingOut(Out):
    id: int
    site_id: int
    code: str
    name: str


class UnitIn(In):
    building_id: RowId
    label: Label
    kind: UnitKind = UnitKind.flat
    owner_id: RowId | None = Field(None, description="Owner (landlord); an owner registering their own unit may omit it.")


class UnitPatch(In):
    label: Label | None = None
    kind: UnitKind | None = None
    owner_id: RowId | None = None


class UnitOut(Out):
    id: int
    site_id: int
    building_id: int
    label: str
    kind: UnitKind
    code: str
    owner_id: int | None
    door_group_id: int | None = None

    @classmethod
    def of(cls, session: Session, unit: Unit) -> UnitOut:
        out = cls.model_validate(unit)
        out.door_group_id = unit_door_group_id(session, unit.id)
        return out


class DoorIn(In):
    site_id: RowId
    code: Code
    name: Name
    kind: DoorKind
    building_id: RowId | None = None
    unit_id: RowId | None = None
    face_mode: FaceMode = FaceMode.face_and_pass


class DoorPatch(In):
    name: Name | None = None
    status: Status | None = None
    face_mode: FaceMode | None = None


class DoorOut(Out):
    id: int
    site_id: int
    building_id: int | None
    unit_id: int | None
    code: str
    name: str
    kind: DoorKind
    status: Status
    face_mode: FaceMode


class DoorGroupIn(In):
    site_id: RowId
    name: Name
    door_ids: list[RowId] = Field(default_factory=list, max_length=1000)


class DoorGroupDoors(In):
    door_ids: list[RowId] = Field(max_length=1000)


class DoorGroupOut(Out):
    id: int
    site_id: int
    name: str
    unit_id: int | None
    door_ids: list[int]

    @classmethod
    def of(cls, group: DoorGroup) -> DoorGroupOut:
        return cls(id=group.id, site_id=group.site_id, name=group.name, unit_id=group.unit_id, door_ids=[d.id for d in group.doors])


def _province(code: str) -> str:
    if code not in personal.PROVINCES:
        raise ValueError("a GB/T 2260 province code: two digits such as 44 (Guangdong) or 51 (Sichuan)")
    return code


def _born(day: date) -> date:
    if not date(1900, 1, 1) <= day <= date.today():
        raise ValueError("a date of birth between 1900-01-01 and today")
    return day


ProvinceCode = Annotated[str, AfterValidator(_province)]
BirthDate = Annotated[date, AfterValidator(_born)]
OptionalText = Annotated[Name, Field(description="free text, one line, up to 200 characters")]


class RegistrationFields(In):
    """Optional tenant-registration fields; each is accepted only where the site collects it
    (``registration.fields`` in the site's settings). Sealed at rest like the name."""

    sex: personal.Sex | None = None
    birth_date: BirthDate | None = None
    household_province: ProvinceCode | None = Field(None, description="household-registration (hukou) province, GB/T 2260 code")
    household_address: OptionalText | None = Field(None, description="household-registration place below the province")
    occupation: OptionalText | None = None
    workplace: OptionalText | None = None


class PersonIn(RegistrationFields):
    site_id: RowId
    display_name: Name
    kind: PersonKind
    phone: Phone | None = None
    external_ref: ExternalRef | None = None


class PersonPatch(RegistrationFields):
    display_name: Name | None = None
    phone: Phone | None = None
    external_ref: ExternalRef | None = None

    @field_validator("display_name")
    @classmethod
    def _keep_name(cls, value: str | None) -> str:
        # phone, external_ref and registration fields may be cleared with null; a person always has a name.
        if value is None:
            raise ValueError("display_name cannot be cleared")
        return value


class PersonOut(BaseModel):
    id: int
    site_id: int
    display_name: str
    kind: PersonKind
    phone: str | None
    external_ref: str | None
    pseudonym: str
    status: Status
    sex: personal.Sex | None = None
    birth_date: date | None = None
    age: int | None = Field(None, description="derived from birth_date on today's date in the site's time zone")
    household_province: str | None = None
    household_address: str | None = None
    occupation: str | None = None
    workplace: str | None = None

    @classmethod
    def of(cls, session: Session, person: Person) -> PersonOut:
        record = personal.read(session, person)
        site = session.get(Site, person.site_id)
        today = datetime.now(ZoneInfo(site.timezone if site else "UTC")).date()
        return cls(
            id=person.id, site_id=person.site_id, kind=person.kind, pseudonym=person.pseudonym, status=person.status,
            age=personal.age_on(record.birth_date, today) if record.birth_date else None,
            **record.model_dump(),
        )


class VehicleIn(In):
    site_id: RowId
    plate: Plate
    owner_person_id: RowId | None = None
    company: Name | None = None


class VehicleOut(Out):
    id: int
    site_id: int
    plate: str
    owner_person_id: int | None
    company: str | None
    status: Status


class DeviceIn(In):
    site_id: RowId
    code: Code
    name: Name
    kind: DeviceKind
    door_ids: list[RowId] = Field(default_factory=list, max_length=200)


class DevicePatch(In):
    name: Name | None = None
    door_ids: list[RowId] | None = Field(None, max_length=200)


class DeviceOut(Out):
    id: int
    site_id: int
    code: str
    name: str
    kind: DeviceKind
    status: Status
    door_ids: list[int]

    @classmethod
    def of(cls, device: Device) -> DeviceOut:
        return cls(
            id=device.id, site_id=device.site_id, code=device.code, name=device.name, kind=device.kind, status=device.status,
            door_ids=[d.id for d in device.doors],
        )


class Window(In):
    valid_from: Timestamp
    valid_until: Timestamp
    schedule: list[ScheduleWindow] | None = Field(None, max_length=28)
    max_uses: int | None = Field(None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class GrantIn(Window):
    door_group_id: RowId
    person_id: RowId | None = None
    vehicle_id: RowId | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> GrantIn:
        if (self.person_id is None) == (self.vehicle_id is None):
            raise ValueError("give exactly one of person_id and vehicle_id")
        return self


class TenancyIn(Window):
    person_id: RowId


class StatusChange(In):
    reason: Reason


class GrantOut(Out):
    id: int
    site_id: int
    person_id: int | None
    vehicle_id: int | None
    door_group_id: int
    unit_id: int | None
    valid_from: UtcDateTime
    valid_until: UtcDateTime
    schedule: list[dict[str, Any]] | None
    max_uses: int | None
    uses: int
    status: Status
    status_reason: str | None
    created_by: str


class AccessCheckIn(In):
    door_id: RowId
    person_id: RowId | None = None
    vehicle_id: RowId | None = None
    plate: Plate | None = None
    at: Timestamp | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> AccessCheckIn:
        if sum(v is not None for v in (self.person_id, self.vehicle_id, self.plate)) != 1:
            raise ValueError("give exactly one of person_id, vehicle_id and plate")
        return self


class AccessCheckOut(BaseModel):
    allowed: bool
    reasons: list[str]
    grant_id: int | None
    at: UtcDateTime
