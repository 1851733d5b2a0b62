"""Retention that runs itself: personal data goes when the site's periods say it is no longer needed.

Per site (``settings.retention``, else the service settings; bounds in site_settings.py and
docs/privacy.md):

- contact data: a person's phone and registration fields are deleted ``contact`` days after their
  last grant (tenancy) ended; their name stays while the registry keeps them. People who never held a
  grant (owners, staff) are not touched: their contact data is not tied to a tenancy;
- door history: decisions and device events older than ``decision`` days are pseudonymised (the
  person replaced by their audit pseudonym, personal values deleted), in batches, each recorded by an
  ``audit.pseudonymised`` event;
- leftovers of erasures: events about an erased person that reached the trail after the erasure (a
  bridge uploading its journal late, a decision still queued on another node) are pseudonymised,
  and revoked passes of erased people are deleted once expired.

Face templates have their own job (faces.service.purge_unneeded_templates, per-site period too).
``dry_run`` reports what would go and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.audit.chain import canonical_time
from idsvc.audit.models import AuditEvent
from idsvc.audit.pseudonymise import pseudonymise
from idsvc.config import Settings
from idsvc.core.db import Database, utcnow
from idsvc.passes.models import Pass
from idsvc.privacy import trail
from idsvc.privacy.erasure import clear_device_events
from idsvc.registry import personal
from idsvc.registry.grants import last_grant_ended
from idsvc.registry.models import Grant, Person, Site
from idsvc.registry.site_settings import retention_periods

ACTOR = "system:retention"


@dataclass
class SiteReport:
    site_id: int | None
    contact_deleted: list[int] = field(default_factory=list)  # person ids
    decisions_pseudonymised: int = 0
    decisions_before: str | None = None


@dataclass
class RetentionReport:
    dry_run: bool
    at: str
    sites: list[SiteReport] = field(default_factory=list)
    late_events_pseudonymised: int = 0
    erased_passes_deleted: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "at": self.at,
            "contact_deleted": sum(len(s.contact_deleted) for s in self.sites),
            "decisions_pseudonymised": sum(s.decisions_pseudonymised for s in self.sites),
            "late_events_pseudonymised": self.late_events_pseudonymised,
            "erased_passes_deleted": self.erased_passes_deleted,
            "sites": [s.__dict__ for s in self.sites if s.contact_deleted or s.decisions_pseudonymised],
        }


def run(db: Database, settings: Settings, *, now: datetime | None = None, dry_run: bool = False, batch: int = 5000) -> RetentionReport:
    now = now or utcnow()
    report = RetentionReport(dry_run, canonical_time(now))
    with db.session() as s:
        sites = [(site.id, retention_periods(settings, site.settings)) for site in s.scalars(select(Site).order_by(Site.id))]
    for site_id, periods in sites:
        site = SiteReport(site_id, decisions_before=canonical_time(now - periods.decision))
        with db.session() as s:
            site.contact_deleted = _contact_data(s, site_id, now - periods.contact, now, dry_run)
        site.decisions_pseudonymised = _door_history(db, AuditEvent.site_id == site_id, now - periods.decision, dry_run, batch)
        report.sites.append(site)
    # Events no site claims (a bridge's own events) follow the service's period.
    unsited = SiteReport(None, decisions_before=canonical_time(now - retention_periods(settings, None).decision))
    unsited.decisions_pseudonymised = _door_history(db, AuditEvent.site_id.is_(None), now - retention_periods(settings, None).decision, dry_run, batch)
    report.sites.append(unsited)
    report.late_events_pseudonymised = _erasure_leftovers(db, dry_run, batch)
    with db.session() as s:
        report.erased_passes_deleted = _expired_passes_of_erased(s, now, dry_run)
    return report


def _contact_data(session: Session, site_id: int, ended_before: datetime, now: datetime, dry_run: bool) -> list[int]:
    """People whose last grant ended before the cutoff and who still hold contact data: delete it."""
    candidates = session.scalars(
        select(Person).where(
            Person.site_id == site_id, Person.erased_at.is_(None), Person.contact_deleted_at.is_(None), Person.sealed.is_not(None),
            Person.id.in_(select(Grant.person_id).where(Grant.site_id == site_id)),
        ).order_by(Person.id)
    ).all()
    done = []
    for person in candidates:
        ended = last_grant_ended(session.scalars(select(Grant).where(Grant.person_id == person.id)), now)
        if ended is None or ended >= ended_before:
            continue
        record = personal.read(session, person)
        fields = [name for name in personal.CONTACT_FIELDS if getattr(record, name) is not None]
        done.append(person.id)
        if dry_run:
            continue
        personal.write(session, person, record.model_copy(update=dict.fromkeys(personal.CONTACT_FIELDS)))
        person.contact_deleted_at = now
        audit.append(session, audit.NewEvent(
            kind="person.contact_deleted", actor=ACTOR, site_id=site_id, person_id=person.id, entity_type="person", entity_id=person.id,
            data={"fields": fields, "tenancy_ended": ended},
        ))
    return done


def _door_history(db: Database, where_site: ColumnElement[bool], before: datetime, dry_run: bool, batch: int) -> int:
    which = where_site & ((AuditEvent.kind == "decision") | AuditEvent.kind.startswith("device.", autoescape=True)) & (AuditEvent.at < before)
    return _pseudonymise_all(db, which, {"reason": "retention", "before": canonical_time(before)}, dry_run, batch)


def _erasure_leftovers(db: Database, dry_run: bool, batch: int) -> int:
    with db.session() as s:
        erased = list(s.scalars(select(Person.id).where(Person.erased_at.is_not(None))))
    if not erased:
        return 0
    return _pseudonymise_all(db, trail.naming_in_clear(erased), {"reason": "erased"}, dry_run, batch)


def _pseudonymise_all(db: Database, which: ColumnElement[bool], about: dict[str, Any], dry_run: bool, batch: int) -> int:
    """Pseudonymise every matching event that still holds personal fields, ``batch`` per transaction."""
    if dry_run:
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(AuditEvent).where(which, AuditEvent.personal_salt.is_not(None))) or 0
    total = 0
    while True:
        with db.session() as s:
            record = audit.NewEvent(kind="audit.pseudonymised", actor=ACTOR, data=about)
            done = pseudonymise(s, record, which, trail.pseudonym_lookup(s), limit=batch, copies=lambda seqs, s=s: clear_device_events(s, seqs))
        total += done
        if done < batch:
            return total


def _expired_passes_of_erased(session: Session, now: datetime, dry_run: bool) -> int:
    rows = session.scalars(select(Pass).where(Pass.expires_at <= now, Pass.person_id.in_(select(Person.id).where(Person.erased_at.is_not(None))))).all()
    if not dry_run:
        for row in rows:
            session.delete(row)
    return len(rows)
