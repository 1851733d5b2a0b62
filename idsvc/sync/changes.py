"""Change capture: every committed change to feed data gets a feed version and a notice to all nodes.

Hooked on SQLAlchemy sessions rather than called by each service, so a change made by any path
(API, CLI, another domain's service) reaches the bridges' feed, the deny set and every node:

- ``after_flush`` notes which tracked rows were inserted, changed or deleted, and which statuses
  changed (the deny set entries);
- ``before_commit`` takes the next feed version (row lock on ``sync_version``, taken last in the
  transaction so it cannot deadlock with locks taken earlier) and logs (site, section, key) per row;
- ``after_commit`` writes the deny entries to Redis and publishes one notice. A failure there is
  logged, not raised: the change is committed, and the version polls (verifier 1 s, bridges
  <= 60 s) still carry it.

Only ORM changes are seen: a bulk ``update()``/``delete()`` statement bypasses the hooks. The one
such statement today is the grant use counter (registry/access.py); it names the grants it changed
in ``session.info[registry.access.USES_CHANGED]``, which is logged here like an ORM change.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, event, insert, inspect, select, update
from sqlalchemy.orm import Session

from idsvc.auth.models import ApiKey
from idsvc.core.bus import Bus
from idsvc.faces.models import FaceConsent, FaceTemplate
from idsvc.passes.models import IssuerKey, KeyStatus, Pass
from idsvc.registry.access import USES_CHANGED
from idsvc.registry.models import Device, Door, DoorGroup, Grant, Person, Site, Status, Vehicle
from idsvc.sync.models import SyncChange, SyncVersion

log = logging.getLogger(__name__)

Logged = tuple[int | None, str, str]  # (site_id or None for every site, section, key)
# The "deny" part of a notice: ("pass:<hex>", "revoked"), or (key, None) to remove. Keys name only
# random identifiers; the deny set (revocation/denyset.py) is built from these entries.
DenyEntry = tuple[str, str | None]


def pass_key(pass_id: bytes | str) -> str:
    return "pass:" + (pass_id.hex() if isinstance(pass_id, bytes) else pass_id)


def sub_key(pseudonym: bytes | str) -> str:
    return "sub:" + (pseudonym.hex() if isinstance(pseudonym, bytes) else pseudonym)


def kid_key(kid: bytes | str) -> str:
    return "kid:" + (kid.hex() if isinstance(kid, bytes) else kid)


def _status_changed(row: Any) -> bool:
    return bool(inspect(row).attrs.status.history.has_changes())


def _grant(row: Grant, _: bool) -> tuple[list[Logged], list[DenyEntry]]:
    return [(row.site_id, "grant", str(row.id))], []


def _pass(row: Pass, changed: bool) -> tuple[list[Logged], list[DenyEntry]]:
    deny = [(pass_key(row.pass_id), None if row.status is Status.active else row.status.value)] if changed else []
    return [(row.site_id, "pass", row.pass_id)], deny


def _person(row: Person, changed: bool) -> tuple[list[Logged], list[DenyEntry]]:
    deny = [(sub_key(row.pseudonym), None if row.status is Status.active else row.status.value)] if changed else []
    return [(row.site_id, "person", row.pseudonym)], deny


def _door_group(row: DoorGroup, _: bool) -> tuple[list[Logged], list[DenyEntry]]:
    return [(row.site_id, "door_group", str(row.id))], []


def _issuer_key(row: IssuerKey, changed: bool) -> tuple[list[Logged], list[DenyEntry]]:
    deny = [(kid_key(row.kid), KeyStatus.withdrawn.value)] if changed and row.status is KeyStatus.withdrawn else []
    return [(None, "trust", row.kid)], deny


def _vehicle(row: Vehicle, _: bool) -> tuple[list[Logged], list[DenyEntry]]:
    return [(row.site_id, "vehicle", str(row.id))], []


def _template(row: FaceTemplate | FaceConsent, _: bool) -> tuple[list[Logged], list[DenyEntry]]:
    # A consent given or withdrawn decides whether the template may be in the feed (face_offline).
    return [(row.site_id, "template", str(row.person_id))], []


def _registry_only(section: str) -> Callable[[Any, bool], tuple[list[Logged], list[DenyEntry]]]:
    """Rows the feed does not carry but the in-process access index (registry/index.py) copies:
    logged under a section the feed builder ignores, so the change is versioned and announced."""

    def describe(row: Any, _: bool) -> tuple[list[Logged], list[DenyEntry]]:
        return [(row.site_id if section != "site" else row.id, section, str(row.id))], []

    return describe


_TRACKED: dict[type, Callable[[Any, bool], tuple[list[Logged], list[DenyEntry]]]] = {
    Grant: _grant,
    Pass: _pass,
    Person: _person,
    DoorGroup: _door_group,
    IssuerKey: _issuer_key,
    FaceTemplate: _template,
    FaceConsent: _template,
    Door: _registry_only("door"),
    Vehicle: _vehicle,
    Site: _registry_only("site"),
}
# Not feed data, but a change must drop every node's one-second memory of API keys at once.
_AUTH = (Device, ApiKey)


@dataclass
class _Pending:
    logged: set[Logged]
    deny: dict[str, str | None]
    auth: bool = False
    version: int | None = None


class DenyRecorder(Protocol):
    """Writes deny entries to the copy all nodes share before the notice goes out, so a node that
    reloads on ``resync`` finds them; revocation.denyset.DenySet implements it (change capture sits
    below revocation and must not import it)."""

    def record(self, entries: list[DenyEntry]) -> None: ...


@dataclass
class Propagation:
    """Where one process's commits are announced (set by the AppContext that owns the engine)."""

    bus: Bus
    deny: DenyRecorder


_attached: weakref.WeakKeyDictionary[Engine, Propagation] = weakref.WeakKeyDictionary()


def attach(engine: Engine, propagation: Propagation) -> None:
    _attached[engine] = propagation


def _pending(session: Session) -> _Pending:
    found = session.info.get("sync_pending")
    if found is None:
        found = session.info["sync_pending"] = _Pending(set(), {})
    return found  # type: ignore[no-any-return]


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    for rows, is_update in ((session.new, False), (session.dirty, True), (session.deleted, False)):
        for row in rows:
            if isinstance(row, _AUTH):
                _pending(session).auth = True
                continue
            describe = _TRACKED.get(type(row))
            if describe is None or (is_update and not session.is_modified(row)):
                continue
            logged, deny = describe(row, is_update and hasattr(row, "status") and _status_changed(row))
            pending = _pending(session)
            pending.logged.update(logged)
            pending.deny.update(deny)


def next_version(session: Session) -> int:
    version = session.execute(update(SyncVersion).where(SyncVersion.id == 1).values(version=SyncVersion.version + 1).returning(SyncVersion.version)).scalar()
    if version is None:
        session.execute(insert(SyncVersion).values(id=1, version=1, pruned_through=0))
        return 1
    return int(version)


def current_version(session: Session) -> tuple[int, int]:
    """(feed version, pruned_through)."""
    row = session.execute(select(SyncVersion.version, SyncVersion.pruned_through).where(SyncVersion.id == 1)).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


@event.listens_for(Session, "before_commit")
def _log(session: Session) -> None:
    session.flush()
    counted = session.info.pop(USES_CHANGED, None)
    if counted:
        _pending(session).logged.update((site_id, "grant", str(grant_id)) for site_id, grant_id in counted)
    pending = session.info.get("sync_pending")
    if pending is None or not pending.logged or pending.version is not None:
        return
    pending.version = version = next_version(session)
    session.execute(insert(SyncChange), [{"version": version, "site_id": s, "section": sec, "key": k} for s, sec, k in sorted(pending.logged, key=str)])


@event.listens_for(Session, "after_commit")
def _announce(session: Session) -> None:
    pending: _Pending | None = session.info.pop("sync_pending", None)
    if pending is None:
        return
    propagation = _attached.get(session.get_bind())  # type: ignore[arg-type]
    if propagation is None:
        return
    sites = sorted({s for s, _, _ in pending.logged}, key=lambda s: -1 if s is None else s)
    # "at" (wall clock, seconds): receivers measure how long notices take (idsvc_feed_notice_lag_seconds).
    notice = {"kind": "change", "version": pending.version, "sites": sites, "deny": sorted(pending.deny.items()), "auth": pending.auth, "at": time.time()}
    try:
        propagation.deny.record(list(pending.deny.items()))
        propagation.bus.publish(notice)
    except Exception:
        log.exception("could not announce feed version %s; nodes and bridges will see it at their next poll", pending.version)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop("sync_pending", None)
    session.info.pop(USES_CHANGED, None)
