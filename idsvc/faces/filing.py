"""The filing threshold of China's 2025 face-recognition measures (art. 15): a personal-information
handler holding the face information of 100,000 people or more files with the provincial
cyberspace administration within 30 working days.

The count is of people with a template (not templates), per site and for the whole deployment (the
district: one handler). From ``IDSVC_FACE_FILING_WARNING_AT`` (90,000) the status says ``warning``
and enrolment logs it; at ``IDSVC_FACE_FILING_CEILING`` (100,000) further people are refused
(409 ``face_filing_required``) until an operator confirms the filing with its reference. Re-enrolling
someone already enrolled is never refused: it does not change the count.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.auth.principal import Principal
from idsvc.config import Settings
from idsvc.core.errors import Conflict
from idsvc.faces.models import FaceFiling, FaceTemplate

log = logging.getLogger(__name__)


def enrolled_people(session: Session) -> dict[int, int]:
    """site id -> people with at least one template there."""
    rows = session.execute(select(FaceTemplate.site_id, func.count(distinct(FaceTemplate.person_id))).group_by(FaceTemplate.site_id))
    return {int(site_id): int(count) for site_id, count in rows}


def latest_filing(session: Session) -> FaceFiling | None:
    return session.scalar(select(FaceFiling).order_by(FaceFiling.id.desc()).limit(1))


def status(session: Session, settings: Settings, site_ids: list[int] | None = None) -> dict[str, Any]:
    """The counts and where the deployment stands: ok, warning, filing_required or filed."""
    sites = enrolled_people(session)
    total = sum(sites.values())
    filing = latest_filing(session)
    if filing is not None:
        state = "filed"
    elif total >= settings.face_filing_ceiling:
        state = "filing_required"
    elif total >= settings.face_filing_warning_at:
        state = "warning"
    else:
        state = "ok"
    shown = sites if site_ids is None else {s: n for s, n in sites.items() if s in site_ids}
    return {
        "status": state,
        "district": {"people_enrolled": total, "warning_at": settings.face_filing_warning_at, "ceiling": settings.face_filing_ceiling},
        "sites": [{"site_id": s, "people_enrolled": n} for s, n in sorted(shown.items())],
        "filing": None if filing is None else {
            "reference": filing.reference, "people_enrolled": filing.people_enrolled, "confirmed_by": filing.confirmed_by, "confirmed_at": filing.confirmed_at,
        },
    }


def check_new_enrolment(session: Session, settings: Settings, person_id: int) -> int:
    """Before a template is written: refuse a new person past the ceiling without a filing; warn near it.
    Returns the deployment's count of enrolled people."""
    total = sum(enrolled_people(session).values())
    already = session.scalar(select(FaceTemplate.id).where(FaceTemplate.person_id == person_id).limit(1)) is not None
    if already:
        return total
    if total >= settings.face_filing_ceiling and latest_filing(session) is None:
        raise Conflict(
            f"The deployment holds the faces of {total} people: past {settings.face_filing_ceiling}, the face-recognition use must be "
            "filed with the provincial cyberspace administration before more people are enrolled. An operator confirms the filing "
            "with `idsvc faces filing confirm --reference ...` (or POST /v1/faces/filing).",
            code="face_filing_required",
            details={"people_enrolled": total, "ceiling": settings.face_filing_ceiling},
        )
    if total + 1 >= settings.face_filing_warning_at and latest_filing(session) is None:
        log.warning(
            "%d people enrolled: file the deployment's face-recognition use before %d (IDSVC_FACE_FILING_CEILING), then `idsvc faces filing confirm`",
            total + 1, settings.face_filing_ceiling,
        )
    return total


def confirm(session: Session, principal: Principal, reference: str) -> FaceFiling:
    principal.require_district_admin()
    filing = FaceFiling(reference=reference, people_enrolled=sum(enrolled_people(session).values()), confirmed_by=principal.actor)
    session.add(filing)
    session.flush()
    audit.append(session, audit.NewEvent(
        kind="face.filing_confirmed", actor=principal.actor, entity_type="face_filing", entity_id=filing.id,
        data={"reference": reference, "people_enrolled": filing.people_enrolled},
    ))
    return filing
