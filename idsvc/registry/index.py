"""An in-process copy of what the authorisation step reads, so a door's question costs no database read.

performance.md: a database or Redis round trip costs more than the signature check of a pass, so the
verify paths read doors, door groups, people, vehicles and grants from memory. The copy is kept per
site and dropped when a change to that site is announced (sync/changes.py publishes a notice after
every commit, on this node at once and on the others through Redis in milliseconds); the next
question for the site reloads it. A one-second poll of the change version is the backstop for a lost
notice. ``registry.access.evaluate`` makes the decision, the same function the database path uses.

What the copy does not follow: the grant use counter (a bulk update). A grant with a use limit is
therefore confirmed in the database by ``consume_use`` when it allows (``AccessResult.counts_uses``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import decision_log
from idsvc.audit.decision_log import DecisionLog
from idsvc.audit.service import NewEvent
from idsvc.core.bus import Bus, Notice
from idsvc.core.context import ServiceContext
from idsvc.core.db import Database
from idsvc.registry.access import (
    AccessResult,
    Reason,
    consume_use,
    evaluate,
    status_reasons,
)
from idsvc.registry.models import (
    Door,
    FaceMode,
    Grant,
    Person,
    Site,
    Status,
    Unit,
    Vehicle,
    door_group_doors,
)


@dataclass(frozen=True)
class GrantCopy:
    id: int
    door_group_id: int
    unit_id: int | None
    status: Status
    valid_from: datetime
    valid_until: datetime
    schedule: list[dict[str, Any]] | None
    max_uses: int | None
    uses: int


@dataclass(frozen=True)
class DoorCopy:
    id: int
    site_id: int
    unit_id: int | None
    status: Status
    group_ids: frozenset[int]
    building_id: int | None = None
    face_mode: FaceMode = FaceMode.face_and_pass


@dataclass
class SiteCopy:
    timezone: str
    doors: dict[int, DoorCopy] = field(default_factory=dict)
    people: dict[int, Status] = field(default_factory=dict)
    vehicles: dict[int, tuple[Status, int | None]] = field(default_factory=dict)  # status, owner person
    plates: dict[str, int] = field(default_factory=dict)
    grants: dict[tuple[str, int], list[GrantCopy]] = field(default_factory=dict)  # ("p"|"v", id) -> grants
    unit_labels: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # label -> [(building, unit)]
    # (door, minute[, unit]) -> people who may pass then: the candidates of a face search, per minute
    # (schedules are in whole minutes; the exact check still runs on the identified person).
    allowed: dict[tuple[int, int, int | None], frozenset[int]] = field(default_factory=dict)


def load_site(session: Session, site_id: int) -> SiteCopy | None:
    site = session.get(Site, site_id)
    if site is None:
        return None
    copy = SiteCopy(timezone=site.timezone)
    groups: dict[int, set[int]] = {}
    for door_id, group_id in session.execute(
        select(door_group_doors.c.door_id, door_group_doors.c.door_group_id).join(Door, Door.id == door_group_doors.c.door_id).where(Door.site_id == site_id)
    ):
        groups.setdefault(door_id, set()).add(group_id)
    for door_id, unit_id, status, building_id, face_mode in session.execute(
        select(Door.id, Door.unit_id, Door.status, Door.building_id, Door.face_mode).where(Door.site_id == site_id)
    ):
        copy.doors[door_id] = DoorCopy(door_id, site_id, unit_id, status, frozenset(groups.get(door_id, ())), building_id, face_mode)
    for unit_id, building_id, label in session.execute(select(Unit.id, Unit.building_id, Unit.label).where(Unit.site_id == site_id)):
        copy.unit_labels.setdefault(label.casefold(), []).append((building_id, unit_id))
    copy.people = {person_id: status for person_id, status in session.execute(select(Person.id, Person.status).where(Person.site_id == site_id))}
    for vehicle_id, plate, status, owner in session.execute(
        select(Vehicle.id, Vehicle.plate, Vehicle.status, Vehicle.owner_person_id).where(Vehicle.site_id == site_id)
    ):
        copy.vehicles[vehicle_id] = (status, owner)
        copy.plates[plate] = vehicle_id
    for row in session.execute(
        select(
            Grant.id, Grant.person_id, Grant.vehicle_id, Grant.door_group_id, Grant.unit_id, Grant.status, Grant.valid_from,
            Grant.valid_until, Grant.schedule, Grant.max_uses, Grant.uses,
        ).where(Grant.site_id == site_id).order_by(Grant.id)
    ):
        key = ("p", row.person_id) if row.person_id is not None else ("v", row.vehicle_id)
        copy.grants.setdefault(key, []).append(
            GrantCopy(row.id, row.door_group_id, row.unit_id, row.status, row.valid_from, row.valid_until, row.schedule, row.max_uses, row.uses)
        )
    return copy


class AccessIndex:
    def __init__(self, db: Database, bus: Bus, data_version: Callable[[Session], int], poll_seconds: float = 1.0) -> None:
        """``data_version`` reads the version every committed change raises (sync's feed version,
        passed in because change capture sits above the registry)."""
        self.db = db
        self._data_version = data_version
        self.poll_seconds = poll_seconds
        self._sites: dict[int, SiteCopy] = {}
        self._door_sites: dict[int, int] = {}
        self._lock = threading.Lock()
        self._version = -1  # the change version the copies are known to include
        self._polled_at = float("-inf")
        bus.subscribe(self._on_notice)

    def _on_notice(self, notice: Notice) -> None:
        if notice.get("kind") == "resync":
            self.forget()
            return
        with self._lock:
            for site_id in notice.get("sites", ()):
                self._sites.pop(site_id, None)
            if notice.get("version") is not None:
                self._version = notice["version"]

    def forget(self) -> None:
        with self._lock:
            self._sites.clear()
            self._door_sites.clear()  # a restored (or reset) database may give a door id to another site
            self._version = -1

    @contextmanager
    def _reading(self) -> Iterator[Callable[[], Session]]:
        """A session opened only if something is not in memory (most questions need none)."""
        opened: list[Session] = []

        def session() -> Session:
            if not opened:
                opened.append(self.db.new_session())
            return opened[0]

        try:
            yield session
        finally:
            for one in opened:
                one.close()

    def _poll(self, session: Callable[[], Session]) -> None:
        """Backstop for a lost notice: a version we have not heard of (or a restored, older database)
        drops every copy."""
        now = time.monotonic()
        if now - self._polled_at < self.poll_seconds:
            return
        version = self._data_version(session())
        with self._lock:
            if version != self._version:
                self._sites.clear()
                self._door_sites.clear()
                self._version = version
            self._polled_at = now

    def _site(self, session: Callable[[], Session], site_id: int) -> SiteCopy | None:
        found = self._sites.get(site_id)
        if found is None:
            found = load_site(session(), site_id)
            if found is not None:
                with self._lock:
                    self._sites[site_id] = found
                    self._door_sites.update(dict.fromkeys(found.doors, site_id))
        return found

    def door(self, door_id: int) -> DoorCopy | None:
        with self._reading() as session:
            return self._door(session, door_id)

    def _door(self, session: Callable[[], Session], door_id: int) -> DoorCopy | None:
        self._poll(session)
        site_id = self._door_sites.get(door_id)
        if site_id is None:
            site_id = session().scalar(select(Door.site_id).where(Door.id == door_id))
            if site_id is None:
                return None
        site = self._site(session, site_id)
        return site.doors.get(door_id) if site is not None else None

    def check(self, door_id: int, at: datetime, *, person_id: int | None = None, plate: str | None = None) -> AccessResult:
        """``check_access`` from memory; a session is opened only to poll the version once a second
        and to load a site's copy after a change."""
        if (person_id is None) == (plate is None):
            raise ValueError("give exactly one of person_id and plate")
        with self._reading() as session:
            door = self._door(session, door_id)
            if door is None:
                return AccessResult.deny(Reason.DOOR_UNKNOWN)
            site = self._site(session, door.site_id)
            reasons = [] if door.status is Status.active else [Reason.DOOR_INACTIVE]
            if site is None:
                return AccessResult.deny(Reason.DOOR_UNKNOWN)
            if person_id is not None:
                status = site.people.get(person_id)
                if status is None:
                    elsewhere = session().scalar(select(Person.site_id).where(Person.id == person_id))
                    return AccessResult.deny(Reason.SUBJECT_UNKNOWN if elsewhere is None else Reason.SUBJECT_OTHER_SITE, *reasons)
                reasons += status_reasons(status)
                key = ("p", person_id)
            else:
                vehicle_id = site.plates.get(plate)  # type: ignore[arg-type]
                if vehicle_id is None:
                    return AccessResult.deny(Reason.SUBJECT_UNKNOWN, *reasons)
                status, owner = site.vehicles[vehicle_id]
                # A vehicle stands in for its owner: a suspended or revoked owner's car stays out as well.
                reasons += status_reasons(status, site.people.get(owner, Status.active) if owner is not None else Status.active)
                key = ("v", vehicle_id)
        grants = [g for g in site.grants.get(key, ()) if g.door_group_id in door.group_ids]
        return evaluate(reasons, grants, at, site.timezone)

    def people_allowed(self, door_id: int, at: datetime, *, unit_id: int | None = None) -> frozenset[int]:
        """Everyone who may pass the door at `at` (active, with a usable grant), optionally only those
        whose grant comes from one unit: the people a face at this door can be."""
        minute = int(at.timestamp() // 60)
        with self._reading() as session:
            door = self._door(session, door_id)
            site = self._site(session, door.site_id) if door is not None else None
        if door is None or site is None:
            return frozenset()
        key = (door_id, minute, unit_id)
        found = site.allowed.get(key)
        if found is None:
            at_minute = datetime.fromtimestamp(minute * 60, tz=at.tzinfo)
            people = set()
            for (kind, subject), grants in site.grants.items():
                if kind != "p":
                    continue
                here = [g for g in grants if g.door_group_id in door.group_ids and (unit_id is None or g.unit_id == unit_id)]
                if here and evaluate(status_reasons(site.people.get(subject, Status.revoked)), here, at_minute, site.timezone).allowed:
                    people.add(subject)
            found = frozenset(people)
            if len(site.allowed) > 10_000:
                site.allowed.clear()  # old minutes: cheaper to drop than to track
            site.allowed[key] = found
        return found

    def unit_for_code(self, door_id: int, code: str) -> int | None:
        """The unit a short code (its label, e.g. "101") names at this door: in the door's building, or
        in the whole site when the door belongs to none and the label is unique there."""
        with self._reading() as session:
            door = self._door(session, door_id)
            site = self._site(session, door.site_id) if door is not None else None
        if door is None or site is None:
            return None
        units = site.unit_labels.get(code.strip().casefold(), [])
        if door.building_id is not None:
            units = [u for u in units if u[0] == door.building_id]
        return units[0][1] if len(units) == 1 else None


class DoorContext(ServiceContext, Protocol):
    """The app context as a door decision (pass, face, plate) uses it: this index, and the decision
    log that batches decisions into the audit trail while an app runs."""

    access: AccessIndex
    decision_log: DecisionLog | None


def record_decision(ctx: DoorContext, access: AccessResult, event_for: Callable[[AccessResult], NewEvent]) -> AccessResult:
    """Audit a door decision made on ``access`` (a :meth:`AccessIndex.check`); the answer's access.

    When it allows through a grant with a use limit, the use is taken and the decision appended to
    the audit trail in one transaction: a crash leaves both or neither, never a counted use without
    its decision. When another door took the last use first, the decision is ``uses_exhausted``.
    Every other decision goes through the batched decision log."""
    if access.allowed and access.counts_uses and access.grant_id is not None:
        with ctx.db.session() as session:
            if consume_use(session, access.grant_id):
                decision_log.record_in(session, event_for(access))
                return access
        access = AccessResult.deny(Reason.USES_EXHAUSTED)
    decision_log.record(ctx.db, ctx.decision_log, event_for(access))
    return access
