"""What the audit chain hashes: one canonical form of an event, and a commitment to its personal part.

Canonical form (scheme 2). An event's hash is SHA-256 over ``prev_hash``, a newline and the compact,
key-sorted JSON of its *public* fields plus ``personal``, a commitment to its *personal* fields:

- times are written one way only: UTC, microseconds, ``Z`` (``2026-12-01T10:00:00.000000Z``), so the
  offset a device sent (``+08:00``) and the zone a database hands back cannot change the hash;
- ``data`` is hashed after the round trip through JSON that storage makes (so what the database
  returns hashes the same as what was appended); non-finite floats, which no database JSON column
  takes, are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

Personal part: who the event names (``person_id``, an actor ``person:N``, the entity id of a
``person`` entity) and the data values under :data:`PERSONAL_DATA_KEYS` (free text staff type, plates,
body temperature, raw terminal events). It is committed to by ``SHA-256(salt || canonical JSON)`` with a
random 16-byte salt stored beside the event. While the salt is there, ``verify`` recomputes the
commitment, so an edit of a personal field is found like any other edit. Pseudonymisation (retention
or erasure) replaces the person references by a pseudonym, deletes the personal data values and the
salt, and keeps the commitment: the chain still verifies, and without the salt the commitment says
nothing about who it was.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

SCHEME = 2
GENESIS_HASH = "0" * 64

# Data keys whose values may identify or describe a person. Listed once, here; docs/privacy.md
# names them, and pseudonymisation deletes them.
PERSONAL_DATA_KEYS = frozenset({
    "plate",  # a vehicle plate names its owner
    "reason",  # free text typed by staff ("Wang moved out")
    "label",  # free text label of an API key ("Li's phone")
    "temperature",  # a body temperature reading (health data)
    "event",  # a terminal's raw event as it sent it (names, employee numbers)
    "requester",  # who asked for an export or erasure
})
# Events that record a pseudonymisation, and the data key stating how many events they pseudonymised.
PSEUDONYMISATION_RECORDS = frozenset({"audit.pseudonymised", "person.erased"})
PSEUDONYMISED_COUNT = "events_pseudonymised"
PERSON_ACTOR_PREFIX = "person:"
PSEUDONYM_ACTOR_PREFIX = "pseudonym:"


class HashedEvent(Protocol):
    """The fields of an audit event the chain covers (the ORM row, or anything shaped like it)."""

    seq: int
    at: datetime
    kind: str
    actor: str
    site_id: int | None
    unit_id: int | None
    door_id: int | None
    person_id: int | None
    entity_type: str | None
    entity_id: int | None
    data: dict[str, Any]
    personal_digest: str | None


def canonical_time(value: datetime) -> str:
    """The one text form of an instant: UTC with microseconds and ``Z``. Naive times are refused."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in an audit event; use an aware time")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _plain(value: Any) -> Any:
    """json.dumps' fallback for values that are not JSON: times canonical, enums by value."""
    if isinstance(value, datetime):
        return canonical_time(value)
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def storable_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as the database will hand it back: through JSON once, finite, times canonical."""
    return json.loads(json.dumps(_finite(dict(data)), default=_plain, allow_nan=False))  # type: ignore[no-any-return]


def canonical_json(value: Any) -> bytes:
    # ensure_ascii: one byte form for every string, lone surrogates included.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def is_person_actor(actor: str) -> bool:
    return actor.startswith(PERSON_ACTOR_PREFIX)


def personal_part(event: HashedEvent) -> dict[str, Any] | None:
    """The fields that name or describe a person; None when the event has none."""
    part = {
        "actor": event.actor if is_person_actor(event.actor) else None,
        "person_id": event.person_id,
        "entity_id": event.entity_id if event.entity_type == "person" else None,
        "data": {k: event.data[k] for k in sorted(PERSONAL_DATA_KEYS) if k in (event.data or {})},
    }
    if part["actor"] is None and part["person_id"] is None and part["entity_id"] is None and not part["data"]:
        return None
    return part


def new_salt() -> bytes:
    return os.urandom(16)


def commitment(salt: bytes, personal: Mapping[str, Any]) -> str:
    return hashlib.sha256(salt + canonical_json(personal)).hexdigest()


def public_part(event: HashedEvent) -> dict[str, Any]:
    """Everything the chain hash covers in clear: what stays verifiable after pseudonymisation."""
    actor = event.actor
    return {
        "v": SCHEME,
        "seq": event.seq,
        "at": canonical_time(event.at),
        "kind": event.kind,
        "actor": None if is_person_actor(actor) or actor.startswith(PSEUDONYM_ACTOR_PREFIX) else actor,
        "site_id": event.site_id,
        "unit_id": event.unit_id,
        "door_id": event.door_id,
        "entity_type": event.entity_type,
        "entity_id": None if event.entity_type == "person" else event.entity_id,
        "data": {k: v for k, v in (event.data or {}).items() if k not in PERSONAL_DATA_KEYS},
        "personal": event.personal_digest,
    }


def chain_hash(prev_hash: str, event: HashedEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical_json(public_part(event))).hexdigest()
