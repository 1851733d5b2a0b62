"""The authorisation core: may this person or vehicle pass door D at time t, and if not, why.

Every verify path (QR pass, face, plate, bridge) ends here after it has identified the subject.
The answer lists every reason that applied, so a denied tenant's landlord can see "expired" rather
than a bare "no".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idsvc.auth.principal import Principal
from idsvc.registry.models import Door, Grant, Person, Site, Status, Vehicle, door_group_doors
from idsvc.registry.schedule import is_within


class Reason:
    """Machine-readable reason codes of the authorisation step (documented in docs/device-api.md)."""

    DOOR_UNKNOWN = "door_unknown"
    DOOR_INACTIVE = "door_inactive"
    SUBJECT_UNKNOWN = "subject_unknown"
    SUBJECT_SUSPENDED = "subject_suspended"
    SUBJECT_REVOKED = "subject_revoked"
    SUBJECT_OTHER_SITE = "subject_other_site"
    NO_GRANT = "no_grant_for_door"
    GRANT_NOT_YET_VALID = "grant_not_yet_valid"
    GRANT_EXPIRED = "grant_expired"
    GRANT_SUSPENDED = "grant_suspended"
    GRANT_REVOKED = "grant_revoked"
    OUTSIDE_SCHEDULE = "outside_schedule"
    USES_EXHAUSTED = "uses_exhausted"


@dataclass(frozen=True)
class AccessResult:
    allowed: bool
    reasons: tuple[str, ...]
    grant_id: int | None = None
    counts_uses: bool = False  # the allowing grant has a use limit: the caller must consume_use()

    @classmethod
    def deny(cls, *reasons: str) -> AccessResult:
        return cls(False, tuple(sorted(set(reasons))))


class GrantLike(Protocol):
    """What the check reads of a grant: a database row or the in-process index's copy."""

    id: int
    status: Status
    valid_from: datetime
    valid_until: datetime
    schedule: list[dict[str, Any]] | None
    max_uses: int | None
    uses: int


def grant_problems(grant: GrantLike, at: datetime, timezone: str) -> list[str]:
    problems = []
    if grant.status is Status.revoked:
        problems.append(Reason.GRANT_REVOKED)
    elif grant.status is Status.suspended:
        problems.append(Reason.GRANT_SUSPENDED)
    if at < grant.valid_from:
        problems.append(Reason.GRANT_NOT_YET_VALID)
    if at >= grant.valid_until:
        problems.append(Reason.GRANT_EXPIRED)
    if not is_within(grant.schedule, at, timezone):
        problems.append(Reason.OUTSIDE_SCHEDULE)
    if grant.max_uses is not None and grant.uses >= grant.max_uses:
        problems.append(Reason.USES_EXHAUSTED)
    return problems


def status_reasons(*statuses: Status) -> list[str]:
    """Door-independent refusals of the subject (and, for a vehicle, of its owner)."""
    reasons = []
    for status in statuses:
        if status is Status.suspended:
            reasons.append(Reason.SUBJECT_SUSPENDED)
        elif status is Status.revoked:
            reasons.append(Reason.SUBJECT_REVOKED)
    return reasons


def evaluate(reasons: list[str], grants: Sequence[GrantLike], at: datetime, timezone: str) -> AccessResult:
    """The decision once door and subject are known: ``reasons`` so far, the subject's grants on the door."""
    if not grants:
        return AccessResult.deny(Reason.NO_GRANT, *reasons)
    problems_by_grant = [(grant, grant_problems(grant, at, timezone)) for grant in grants]
    usable = [grant for grant, problems in problems_by_grant if not problems]
    if usable and not reasons:
        return AccessResult(True, (), usable[0].id, counts_uses=usable[0].max_uses is not None)
    if usable:
        return AccessResult.deny(*reasons)
    return AccessResult.deny(*reasons, *(p for _, problems in problems_by_grant for p in problems))


def check_access_as(principal: Principal, session: Session, door_id: int, at: datetime, **subject: Any) -> AccessResult:
    """:func:`check_access` as a caller sees it: a subject of a site the caller does not administer
    is ``subject_unknown``, exactly like one that does not exist (no probing other sites by id)."""
    result = check_access(session, door_id, at, **subject)
    if Reason.SUBJECT_OTHER_SITE not in result.reasons:
        return result
    row = session.get(Person, subject["person_id"]) if subject.get("person_id") is not None else session.get(Vehicle, subject.get("vehicle_id"))
    if row is not None and principal.administers_site(row.site_id):
        return result
    return AccessResult.deny(*(Reason.SUBJECT_UNKNOWN if r == Reason.SUBJECT_OTHER_SITE else r for r in result.reasons))


def check_access(
    session: Session,
    door_id: int,
    at: datetime,
    *,
    person_id: int | None = None,
    vehicle_id: int | None = None,
    plate: str | None = None,
) -> AccessResult:
    """The check straight from the database (admin dry runs). Doors use ``registry.index``, which
    evaluates the same way from an in-process copy.

    ``plate`` (normalised, see ``core.validation.normalise_plate``) is looked up in the door's site;
    a plate nobody registered there is an unknown subject, like an unknown person."""
    if sum(x is not None for x in (person_id, vehicle_id, plate)) != 1:
        raise ValueError("give exactly one of person_id, vehicle_id and plate")
    door = session.get(Door, door_id)
    if door is None:
        return AccessResult.deny(Reason.DOOR_UNKNOWN)
    reasons: list[str] = []
    if door.status is not Status.active:
        reasons.append(Reason.DOOR_INACTIVE)
    if plate is not None:
        vehicle_id = session.scalar(select(Vehicle.id).where(Vehicle.site_id == door.site_id, Vehicle.plate == plate))
        if vehicle_id is None:
            return AccessResult.deny(Reason.SUBJECT_UNKNOWN, *reasons)

    subject: Person | Vehicle | None = session.get(Person, person_id) if person_id is not None else session.get(Vehicle, vehicle_id)
    if subject is None:
        return AccessResult.deny(Reason.SUBJECT_UNKNOWN, *reasons)
    if subject.site_id != door.site_id:
        return AccessResult.deny(Reason.SUBJECT_OTHER_SITE, *reasons)
    # A vehicle stands in for its owner: a suspended or revoked owner's car stays out as well.
    owner = session.get(Person, subject.owner_person_id) if isinstance(subject, Vehicle) and subject.owner_person_id else None
    reasons += status_reasons(subject.status, owner.status if owner is not None else Status.active)

    subject_column = Grant.person_id if person_id is not None else Grant.vehicle_id
    grants = session.scalars(
        select(Grant)
        .join(door_group_doors, door_group_doors.c.door_group_id == Grant.door_group_id)
        .where(door_group_doors.c.door_id == door_id, subject_column == (person_id if person_id is not None else vehicle_id))
        .order_by(Grant.id)
    ).all()
    timezone = session.get(Site, door.site_id).timezone  # type: ignore[union-attr]
    return evaluate(reasons, grants, at, timezone)


# session.info key: (site_id, grant_id) of grants whose use count a bulk UPDATE changed. Change capture
# (sync/changes.py, which the ORM hooks cannot tell) reads it, so the bridges' feed follows the count.
USES_CHANGED = "registry.uses_changed"


def _uses_changed(session: Session, site_id: int, grant_id: int) -> None:
    session.info.setdefault(USES_CHANGED, set()).add((site_id, grant_id))


def consume_use(session: Session, grant_id: int) -> bool:
    """Count one use of a grant with a use limit; False when another door took the last use first
    (or the grant stopped being active meanwhile)."""
    site_id = session.execute(
        update(Grant)
        # Re-checks the status too: a grant revoked between the check and this update keeps its uses.
        .where(Grant.id == grant_id, Grant.status == Status.active, (Grant.max_uses.is_(None)) | (Grant.uses < Grant.max_uses))
        .values(uses=Grant.uses + 1)
        .returning(Grant.site_id)
    ).scalar()
    if site_id is None:
        return False
    _uses_changed(session, site_id, grant_id)
    return True


def count_offline_use(session: Session, grant_id: int) -> bool:
    """Count a use a bridge granted offline (from its feed, without asking): it happened, so it is
    counted even past the limit (two bridges cut off at once can both take the last use). False when
    the grant no longer exists."""
    site_id = session.execute(update(Grant).where(Grant.id == grant_id).values(uses=Grant.uses + 1).returning(Grant.site_id)).scalar()
    if site_id is None:
        return False
    _uses_changed(session, site_id, grant_id)
    return True
