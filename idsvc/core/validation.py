"""Reusable input types: one definition of what a code, a name, a plate or a time window may be."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from annotated_types import Ge, Le
from pydantic import AfterValidator, AwareDatetime, StringConstraints

# Row ids are PostgreSQL integers: a bigger (or non-positive) id cannot exist and must not reach the
# database, where it would fail as an out-of-range value instead of a clean 422.
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Ge(1), Le(MAX_ROW_ID)]
Seq = Annotated[int, Ge(0), Le(2**63 - 1)]


def _no_surrogates(value: str) -> None:
    # A lone surrogate (what Python makes of bytes that are not UTF-8, in argv or in a JSON escape)
    # cannot be stored or printed as UTF-8: refuse it here rather than fail in the database.
    if any(unicodedata.category(ch) == "Cs" for ch in value):
        raise ValueError("text with unpaired surrogates is not valid Unicode")


def _single_line(value: str) -> str:
    # Control characters (NUL above all: PostgreSQL text refuses it) have no place in a name or a code.
    _no_surrogates(value)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def _text(value: str) -> str:
    _no_surrogates(value)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise ValueError("control characters other than newline and tab are not allowed")
    return value


# Codes compare case-insensitively: 'B1' is accepted and stored as 'b1' (the pattern sees the input as typed).
def _json_safe(value: Any, depth: int = 0) -> Any:
    # Python's JSON reader takes NaN and Infinity, which no database JSON column (nor JSON) accepts.
    if depth > 32:
        raise ValueError("nested more than 32 levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("NaN and Infinity are not JSON numbers")
    for text in ([value] if isinstance(value, str) else value.keys() if isinstance(value, dict) else ()):
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
            raise ValueError("text with unpaired surrogates is not valid Unicode")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        _json_safe(child, depth + 1)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_json_safe)]

Code = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{1,39}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_single_line)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_single_line)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[\w][\w .#/-]*$")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), AfterValidator(_text)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{5,31}$")]
# The version of a text shown to a person (a consent text): what a site prints on its form, e.g. "2026-11" or "v3.1".
TextVersion = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")]
# A BCP 47 language tag such as zh-CN, zh-Hans-CN or en: language, then up to three subtags.
LanguageTag = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")]
ExternalRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_single_line)]
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)  # a day short of the end: any zone can still show it


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None
    if not _EARLIEST <= utc <= _LATEST:
        raise ValueError("the time must be between 1970-01-01 and 9999-12-30 (UTC)")
    return utc


# A time without a zone is ambiguous at a door: refuse it. Years 1 or 9999 in some zones are not
# representable in UTC (or in the site's zone), so the range is bounded too. Accepted times become
# UTC at the edge: the service stores, compares, audits and answers UTC only (core/times.py).
Timestamp = Annotated[AwareDatetime, AfterValidator(_in_range)]


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone name such as 'Asia/Shanghai'") from None
    if value not in available_timezones() and value != "UTC":
        raise ValueError("not an IANA time zone name such as 'Asia/Shanghai'")
    return value


TimeZoneName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_check_timezone)]

_PLATE_SEPARATORS = re.compile(r"[\s·.\-]")


def normalise_plate(value: str) -> str:
    """'粤B·12345', 'ab-123 cd' -> '粤B12345', 'AB123CD': what cameras and people type must compare equal."""
    plate = _PLATE_SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()
    if not 2 <= len(plate) <= 12 or not all(ch.isalnum() for ch in plate):
        raise ValueError("a plate is 2-12 letters or digits (separators are ignored)")
    return plate


Plate = Annotated[str, AfterValidator(normalise_plate)]
