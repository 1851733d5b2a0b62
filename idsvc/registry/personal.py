"""A person's personal fields, sealed at rest (one AES-GCM blob per person) with blind indexes.

What is sealed: the display name, phone, external reference, and the optional registration fields the
rental-housing rules ask for where a site turns them on (``registration.fields`` in its settings):
sex, date of birth (age is derived, never stored), household-registration place (province by its
GB/T 2260 code, plus free text), occupation and workplace. The blob is bound to the person's
pseudonym, so it does not open on another row. Equality lookups (phone, external reference) go
through blind indexes (core/sealing.py); nothing else about a person is searchable.
"""

from __future__ import annotations

import enum
import re
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from idsvc.core.db import session_sealer
from idsvc.core.sealing import Sealer
from idsvc.registry.models import Person


class Sex(str, enum.Enum):
    female = "female"
    male = "male"


# GB/T 2260 province-level divisions: the first two digits of every administrative division code.
PROVINCES = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省",
    "31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
    "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区", "46": "海南省",
    "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省", "54": "西藏自治区",
    "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区", "65": "新疆维吾尔自治区",
    "71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}

# The optional registration fields, in the order the docs list them; a site enables a subset.
REGISTRATION_FIELDS = ("sex", "birth_date", "household_province", "household_address", "occupation", "workplace")
CONTACT_FIELDS = ("phone", *REGISTRATION_FIELDS)  # what retention deletes after a tenancy ends


class PersonalRecord(BaseModel):
    """What ``Person.sealed`` holds."""

    model_config = ConfigDict(extra="forbid")

    display_name: str
    phone: str | None = None
    external_ref: str | None = None
    sex: Sex | None = None
    birth_date: date | None = None
    household_province: str | None = None
    household_address: str | None = None
    occupation: str | None = None
    workplace: str | None = None


ERASED = PersonalRecord(display_name="")


def _aad(person: Person) -> str:
    return f"person:{person.pseudonym}"


def normalise_phone(phone: str) -> str:
    """'+86 138-0013-8000' and '+8613800138000' are one number: digits, and a leading + if given."""
    digits = re.sub(r"\D", "", phone)
    return ("+" if phone.strip().startswith("+") else "") + digits


def read(session: Session, person: Person) -> PersonalRecord:
    """The person's personal fields (an erased person's are empty)."""
    if person.sealed is None:
        return ERASED
    return open_record(session_sealer(session), person)


def open_record(sealer: Sealer, person: Person) -> PersonalRecord:
    assert person.sealed is not None
    return PersonalRecord.model_validate_json(sealer.open(person.sealed, _aad(person)))


def write(session: Session, person: Person, record: PersonalRecord) -> None:
    seal_record(session_sealer(session), person, record)


def sealed_columns(sealer: Sealer, person: Person, record: PersonalRecord) -> dict[str, Any]:
    """The row's columns for this record: sealed under the current master key, blind indexes under its
    index key, and the names of the filled registration fields."""
    return {
        "sealed": sealer.seal(record.model_dump_json(exclude_none=True).encode(), _aad(person)),
        "phone_index": sealer.blind_index("phone", normalise_phone(record.phone)) if record.phone else None,
        "external_ref_index": sealer.blind_index("external_ref", record.external_ref) if record.external_ref else None,
        "registration_filled": [name for name in REGISTRATION_FIELDS if getattr(record, name) is not None],
    }


def seal_record(sealer: Sealer, person: Person, record: PersonalRecord) -> None:
    for column, value in sealed_columns(sealer, person, record).items():
        setattr(person, column, value)


def resealed(sealer: Sealer, person: Person) -> dict[str, Any]:
    """Master-key rotation: the same record sealed and indexed under the current key."""
    return sealed_columns(sealer, person, open_record(sealer, person))


def erase(person: Person) -> None:
    person.sealed = person.phone_index = person.external_ref_index = None
    person.registration_filled = []


def _matches(session: Session, column: ColumnElement[str | None], field: str, value: str) -> ColumnElement[bool]:
    return column.in_(session_sealer(session).blind_indexes(field, value))


def with_phone(session: Session, phone: str) -> ColumnElement[bool]:
    """A WHERE clause: people with this phone number (under any configured master key)."""
    return _matches(session, Person.phone_index, "phone", normalise_phone(phone))


def external_ref_taken(session: Session, site_id: int, external_ref: str, other_than: int | None = None) -> bool:
    stmt = select(Person.id).where(Person.site_id == site_id, _matches(session, Person.external_ref_index, "external_ref", external_ref))
    if other_than is not None:
        stmt = stmt.where(Person.id != other_than)
    return session.scalar(stmt.limit(1)) is not None


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
