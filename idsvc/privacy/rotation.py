"""Master-key rotation: re-seal everything sealed at rest under the first key of ``IDSVC_MASTER_KEY``.

Without downtime: the service runs with ``NEW,OLD`` meanwhile (new writes seal with NEW, everything
opens with either, blind-index lookups match under both), and rows move in small batches, each its
own short transaction. A row is written back only if its sealed value is still the one that was
read (compare-and-set), so a change made by a request in between is never overwritten: it was
sealed with NEW already. Rerunning continues where it stopped; ``status`` tells when OLD may go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, inspect, literal_column, select, update
from sqlalchemy.orm import InstrumentedAttribute

from idsvc.alarms import sensors
from idsvc.alarms.models import Sensor
from idsvc.core.db import Database
from idsvc.core.sealing import Sealer
from idsvc.faces import gallery
from idsvc.faces.models import FaceTemplate
from idsvc.passes import keys
from idsvc.passes.models import IssuerKey
from idsvc.registry import personal
from idsvc.registry.models import Person
from idsvc.sync import feed
from idsvc.sync.models import SyncSiteKey


@dataclass(frozen=True)
class SealedColumn:
    """A column sealed with the master key and how its owning domain re-seals a row of it."""

    table: str
    model: type[Any]
    column: InstrumentedAttribute[Any]
    resealed: Callable[[Sealer, Any], dict[str, Any]]


SEALED_COLUMNS = (
    SealedColumn("people", Person, Person.sealed, personal.resealed),
    SealedColumn("face_templates", FaceTemplate, FaceTemplate.sealed, gallery.resealed),
    SealedColumn("pass_issuer_keys", IssuerKey, IssuerKey.sealed_private, keys.resealed),
    SealedColumn("sync_site_keys", SyncSiteKey, SyncSiteKey.sealed_key, feed.resealed_site_key),
    SealedColumn("sensors", Sensor, Sensor.sealed_password, sensors.resealed),
)


def _key_id_of(column: InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    # A sealed blob is version (1 byte) | key id (4 bytes) | nonce | ciphertext (core/sealing.py).
    # Literal positions: PostgreSQL must see the same expression in SELECT and GROUP BY.
    return func.substr(column, literal_column("2"), literal_column("4"))


def status(db: Database, sealer: Sealer) -> dict[str, dict[str, int]]:
    """Per table: rows sealed under the current key and under older ones."""
    out = {}
    with db.session() as session:
        for sealed in SEALED_COLUMNS:
            counts = dict(session.execute(select(_key_id_of(sealed.column), func.count()).where(sealed.column.is_not(None)).group_by(_key_id_of(sealed.column))).all())
            current = counts.pop(sealer.current_key_id, 0)
            out[sealed.table] = {"current_key": int(current), "older_keys": int(sum(counts.values()))}
    return out


def rotate(db: Database, sealer: Sealer, batch: int = 500, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Re-seal every row not under the current key, ``batch`` rows per transaction; returns rows moved per table."""
    moved: dict[str, int] = {}
    for sealed in SEALED_COLUMNS:
        key = inspect(sealed.model).primary_key[0]
        moved[sealed.table] = 0
        after: Any = None
        while True:
            with db.session() as session:
                stmt = select(sealed.model).where(sealed.column.is_not(None), _key_id_of(sealed.column) != sealer.current_key_id).order_by(key).limit(batch)
                rows = list(session.scalars(stmt if after is None else stmt.where(key > after)))
                for row in rows:
                    values = sealed.resealed(sealer, row)
                    changed = session.execute(
                        update(sealed.model).where(key == getattr(row, key.key), sealed.column == getattr(row, sealed.column.key)).values(**values)
                    ).rowcount
                    moved[sealed.table] += changed
            if not rows:
                break
            after = getattr(rows[-1], key.key)
            if progress is not None:
                progress(sealed.table, moved[sealed.table])
    return moved
