"""One form for every time in an answer: RFC 3339 in UTC with ``Z``. Times this code writes carry
microseconds (``2026-12-01T10:00:00.000000Z``, the form the audit chain hashes: audit.chain.canonical_time);
values pydantic writes inside plain answers leave out a zero fraction (``2026-12-01T10:00:00Z``).
Both are the same instant in the same zone: clients parse RFC 3339.

Clients send times with any offset (terminals in China send +08:00); the service stores UTC and
answers UTC, so a lock maker parses one form. Pydantic models use :data:`UtcDateTime`; code that
builds dicts by hand calls :func:`rfc3339`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

RFC3339_UTC_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"


def rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no place in an answer; use an aware UTC datetime")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def rfc3339_or_none(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def use_rfc3339_in_plain_answers() -> None:
    """Answers built as plain dicts holding datetime objects are encoded by FastAPI's
    ``jsonable_encoder``, whose table maps datetime to ``isoformat()`` ("+00:00", or any offset the
    value has). Point that entry here, so no answer can carry another form. (Pydantic models use
    :data:`UtcDateTime`; this covers the rest.)"""
    from fastapi import encoders

    encoders.ENCODERS_BY_TYPE[datetime] = rfc3339


# The JSON schema says so too, so the OpenAPI tells clients the exact form (and a test can find any
# datetime field of an answer that does not use this type).
UtcDateTime = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_UTC_PATTERN, "examples": ["2026-12-01T10:00:00.000000Z"]}, mode="serialization"),
]
