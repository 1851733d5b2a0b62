"""The trust and status versions: every decision names the versions it used, and verifiers poll them."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idsvc.passes.models import PassVersions


def read(session: Session) -> tuple[int, int]:
    """(trust_version, status_version); (0, 0) before the first change."""
    row = session.execute(select(PassVersions.trust_version, PassVersions.status_version).where(PassVersions.id == 1)).first()
    return (row[0], row[1]) if row else (0, 0)


def bump(session: Session, *, trust: bool = False, status: bool = False) -> None:
    values = {}
    if trust:
        values["trust_version"] = PassVersions.trust_version + 1
    if status:
        values["status_version"] = PassVersions.status_version + 1
    if session.execute(update(PassVersions).where(PassVersions.id == 1).values(**values)).rowcount == 0:
        session.add(PassVersions(id=1, trust_version=int(trust), status_version=int(status)))
        session.flush()
