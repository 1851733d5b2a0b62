"""Face consent, enrolment, deletion and door verification.

Order of the privacy rules (design/privacy.md): consent is recorded before any template exists;
photos are processed in memory only; templates are sealed and bound to their site; withdrawing
consent deletes the template. Door decisions search only the door's own site and answer
"unknown_face" below the threshold: never the nearest person.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.config import Settings
from idsvc.core import ids
from idsvc.core.db import utcnow
from idsvc.core.errors import ApiError, Conflict, Forbidden, InvalidInput
from idsvc.core.times import rfc3339
from idsvc.faces import filing
from idsvc.faces.engine import (
    Extraction,
    FaceEngine,
    Reason,
    cosine,
    get_engine,
)
from idsvc.faces.gallery import GALLERIES, bump_version, readable_embedding, seal_embedding
from idsvc.faces.imaging import decode_image
from idsvc.faces.models import ConsentPurpose, FaceConsent, FaceTemplate
from idsvc.faces.openset import Calibration
from idsvc.faces.packs import PackError
from idsvc.faces.policy import SitePolicy, door_threshold, load_calibration
from idsvc.registry import scope
from idsvc.registry.grants import last_grant_ended
from idsvc.registry.access import AccessResult
from idsvc.registry.index import DoorContext, record_decision
from idsvc.registry.models import FaceMode, Grant, Person, Site
from idsvc.registry.site_settings import retention_periods

log = logging.getLogger(__name__)

MAX_ENROL_IMAGES = 5
UNKNOWN_FACE = "unknown_face"
FACE_MISMATCH = "face_mismatch"
NO_TEMPLATE = "no_face_template"
# Door policy (face_mode) refusals, decided before any image is looked at.
FACE_NOT_ENABLED = "face_not_enabled"  # face_mode off
PASS_REQUIRED = "pass_required"  # face_and_pass without the pass holder (person_id)
CODE_REQUIRED = "code_required"  # face_and_code without a code
CODE_UNKNOWN = "code_unknown"  # the code names no unit at this door
# The face is a person of the site who is not among the candidates: not allowed here now, or (at a
# face_and_code door) not of the unit keyed. Always a denial: the threshold was chosen for the
# candidates only, so a match outside them must never open the door.
NOT_A_CANDIDATE = "not_a_candidate"
# Warnings (never deny on their own).
OTHER_FACES = "other_faces_ignored"  # a crowded frame: the subject was verified, the others ignored
OVER_CAPACITY = "face_only_over_capacity"  # more people may pass this face_only door than the pack supports at the site's targets
LIVENESS_UNAVAILABLE = "liveness_unavailable"

# Every reason and warning a face decision can carry besides the registry's (registry.access.Reason).
# docs/device-api.md documents each one; tests/faces/test_face_docs.py keeps the two in step.
DECISION_REASONS = (
    FACE_NOT_ENABLED, PASS_REQUIRED, CODE_REQUIRED, CODE_UNKNOWN,
    Reason.NO_FACE, Reason.MULTIPLE_FACES, Reason.FACE_TOO_SMALL, Reason.LOW_QUALITY, Reason.SPOOF_SUSPECTED,
    UNKNOWN_FACE, FACE_MISMATCH, NO_TEMPLATE, NOT_A_CANDIDATE,
)  # fmt: skip
DECISION_WARNINGS = (Reason.SPOOF_SUSPECTED, LIVENESS_UNAVAILABLE, OTHER_FACES, OVER_CAPACITY)


class FaceEngineUnavailable(ApiError):
    status = 503
    code = "face_engine_unavailable"


def engine_for(settings: Settings) -> FaceEngine:
    try:
        return get_engine(settings.models_dir, settings.face_pack, settings.face_onnx_threads)
    except PackError as exc:
        raise FaceEngineUnavailable(str(exc)) from exc


# --- who may do what -------------------------------------------------------------------------------


def _person_for(session: Session, principal: Principal, person_id: int, *, manage: bool) -> Person:
    """The person, if the caller may see (and with manage=True, enrol) their face data; else 404/403.

    Site admins and district admins: anyone of their sites. Owners: people they registered and tenants
    of their units. Tenants: themselves, to read and delete (not enrol: enrolment is attended).
    """
    person = session.get(Person, person_id)
    if person is None or principal.role is Role.device or not scope.can_see_person(session, principal, person):
        raise scope.not_visible("person", person_id)
    if manage and principal.role is Role.tenant:
        raise Forbidden("Tenants may read and delete their face data; enrolment is done by their landlord or the site.", code="forbidden_role")
    return person


def active_consent(session: Session, person_id: int, purpose: ConsentPurpose = ConsentPurpose.face_access) -> FaceConsent | None:
    return session.scalar(
        select(FaceConsent)
        .where(FaceConsent.person_id == person_id, FaceConsent.purpose == purpose, FaceConsent.withdrawn_at.is_(None))
        .order_by(FaceConsent.id.desc())
    )


# --- consent ---------------------------------------------------------------------------------------


def record_consent(
    session: Session,
    principal: Principal,
    person_id: int,
    *,
    method: str,
    text_version: str,
    language: str,
    purpose: ConsentPurpose = ConsentPurpose.face_access,
    given_at: datetime | None = None,
) -> FaceConsent:
    """Record one separate consent: for one purpose, with the text version and language shown."""
    person = _person_for(session, principal, person_id, manage=True)
    now = utcnow()
    if given_at is not None and given_at > now:
        raise InvalidInput("given_at is in the future.", code="consent_in_future")
    consent = FaceConsent(
        site_id=person.site_id, person_id=person.id, purpose=purpose, text_version=text_version, language=language, method=method,
        given_at=given_at or now, recorded_by=principal.actor,
    )
    session.add(consent)
    session.flush()
    audit.append(
        session,
        audit.NewEvent(
            kind="face.consent_recorded",
            actor=principal.actor,
            site_id=person.site_id,
            person_id=person.id,
            entity_type="face_consent",
            entity_id=consent.id,
            data={"purpose": purpose.value, "method": method, "text_version": text_version, "language": language, "given_at": rfc3339(consent.given_at)},
        ),
    )
    return consent


def withdraw_consent(session: Session, principal: Principal, person_id: int, purpose: ConsentPurpose | None = None) -> int:
    """Withdraw the person's active consents (of one purpose, or all). Without face_access consent no
    template may stay: it is deleted at once. Returns the templates deleted."""
    person = _person_for(session, principal, person_id, manage=False)
    now = utcnow()
    stmt = select(FaceConsent).where(FaceConsent.person_id == person.id, FaceConsent.withdrawn_at.is_(None))
    consents = session.scalars(stmt if purpose is None else stmt.where(FaceConsent.purpose == purpose)).all()
    for consent in consents:
        consent.withdrawn_at, consent.withdrawn_by = now, principal.actor
    deleted = _delete_templates(session, person) if active_consent(session, person.id) is None else 0
    audit.append(
        session,
        audit.NewEvent(
            kind="face.consent_withdrawn",
            actor=principal.actor,
            site_id=person.site_id,
            person_id=person.id,
            data={"consents": [c.id for c in consents], "purposes": sorted({c.purpose.value for c in consents}), "templates_deleted": deleted},
        ),
    )
    return deleted


# --- templates -------------------------------------------------------------------------------------


def extract_for_enrolment(engine: FaceEngine, policy: SitePolicy, data: bytes, max_pixels: int) -> Extraction:
    """One enrolment photo through the quality gate; raises a 422 naming the first problem."""
    extraction = engine.extract(decode_image(data, max_pixels), policy.quality, check_liveness=policy.liveness_mode != "off")
    problems = extraction.blocking_problems
    if extraction.spoof_suspected and policy.liveness_mode == "enforce":
        problems.append(Reason.SPOOF_SUSPECTED)
    if problems:
        raise InvalidInput(_REJECTIONS[problems[0]], code=problems[0], details={"problems": problems, "quality": extraction.quality()})
    return extraction


_REJECTIONS = {
    Reason.NO_FACE: "No face was found in the photo.",
    Reason.MULTIPLE_FACES: "More than one face is in the photo; send a photo of the enrolled person alone.",
    Reason.FACE_TOO_SMALL: "The face is too small; move closer or send a larger photo.",
    Reason.LOW_QUALITY: "The face is blurred, turned away or partly hidden; send a sharp, frontal photo.",
    Reason.SPOOF_SUSPECTED: "The photo looks like a re-captured picture or screen, not a live face.",
}


def enrol(ctx: DoorContext, session: Session, principal: Principal, person_id: int, images: list[bytes]) -> FaceTemplate:
    """Create or replace the person's template from 1..5 photos (the mean of their embeddings)."""
    person = _person_for(session, principal, person_id, manage=True)
    if not 1 <= len(images) <= MAX_ENROL_IMAGES:
        raise InvalidInput(f"Send between 1 and {MAX_ENROL_IMAGES} photos.", code="image_count")
    consent = active_consent(session, person.id)
    if consent is None:
        raise Conflict("Record the person's separate consent for face access before enrolling their face.", code="consent_required", details={"purpose": ConsentPurpose.face_access.value})
    filing.check_new_enrolment(session, ctx.settings, person.id)  # before the photos are even looked at
    engine = engine_for(ctx.settings)
    policy = SitePolicy.of(ctx.settings, session.get(Site, person.site_id))  # type: ignore[arg-type]
    extractions = []
    for index, data in enumerate(images):
        try:
            extractions.append(extract_for_enrolment(engine, policy, data, ctx.settings.face_max_pixels))
        except InvalidInput as exc:
            exc.details = {"image": index, **(exc.details or {})}
            raise
    vectors = np.stack([e.embedding for e in extractions])  # type: ignore[misc]
    if len(vectors) > 1 and float((vectors @ vectors.T).min()) < door_threshold(ctx.settings, policy, 1).threshold:
        # Photos of two different people under one name would make a template that matches neither well.
        raise InvalidInput("The photos do not show the same person.", code="images_disagree")
    mean = vectors.mean(axis=0)
    template_vector = mean / np.linalg.norm(mean)
    template = session.scalar(select(FaceTemplate).where(FaceTemplate.person_id == person.id, FaceTemplate.pack == engine.pack))
    if template is None:
        template = FaceTemplate(site_id=person.site_id, person_id=person.id, pack=engine.pack)
        session.add(template)
    template.consent_id = consent.id
    template.dim = engine.dim
    template.sealed = seal_embedding(ctx.sealer, template_vector, person.site_id, person.id, engine.pack)
    template.images_used = len(images)
    template.quality = [e.quality() for e in extractions]
    template.created_by = principal.actor
    template.updated_at = utcnow()
    bump_version(session, person.site_id)
    session.flush()
    enrolled = filing.enrolled_people(session)
    audit.append(
        session,
        audit.NewEvent(
            kind="face.enrolled",
            actor=principal.actor,
            site_id=person.site_id,
            person_id=person.id,
            entity_type="face_template",
            entity_id=template.id,
            data={"pack": engine.pack, "images": len(images), "consent_id": consent.id, "site_people_enrolled": enrolled.get(person.site_id, 0), "people_enrolled": sum(enrolled.values())},
        ),
    )
    return template


def _delete_templates(session: Session, person: Person) -> int:
    templates = session.scalars(select(FaceTemplate).where(FaceTemplate.person_id == person.id)).all()
    for template in templates:
        session.delete(template)
    if templates:
        bump_version(session, person.site_id)
    return len(templates)


def delete_template(session: Session, principal: Principal, person_id: int) -> int:
    person = _person_for(session, principal, person_id, manage=False)
    deleted = _delete_templates(session, person)
    if deleted:
        audit.append(session, audit.NewEvent(kind="face.deleted", actor=principal.actor, site_id=person.site_id, person_id=person.id))
    return deleted


def purge_unneeded_templates(
    session: Session, grace: timedelta | Callable[[int], timedelta], now: datetime | None = None, *, dry_run: bool = False
) -> list[int]:
    """Delete templates of people whose last grant ended (expired or revoked) more than `grace` ago
    (a timedelta, or a function of the site id: its retention setting).

    A template enrolled before any grant was given is kept for `grace` after its enrolment.
    Returns the person ids whose templates were (with dry_run: would be) deleted.
    """
    now = now or utcnow()
    grace_of = grace if callable(grace) else (lambda _site_id: grace)
    deleted: list[int] = []
    for template in session.scalars(select(FaceTemplate).order_by(FaceTemplate.id)).all():
        if template.person_id in deleted:
            continue
        grants = session.scalars(select(Grant).where(Grant.person_id == template.person_id)).all()
        if grants and last_grant_ended(grants, now) is None:
            continue  # a current or future grant still needs the face
        last_needed = max(filter(None, [template.updated_at, last_grant_ended(grants, now)]))
        if last_needed + grace_of(template.site_id) > now:
            continue
        deleted.append(template.person_id)
        if dry_run:
            continue
        person = session.get(Person, template.person_id)
        _delete_templates(session, person)  # type: ignore[arg-type]
        audit.append(
            session,
            audit.NewEvent(kind="face.deleted", actor="system:retention", site_id=template.site_id, person_id=template.person_id, data={"reason": "no_grant"}),
        )
    return deleted


def purge_templates(session: Session, settings: Settings, now: datetime | None = None, *, dry_run: bool = False) -> list[int]:
    """The template purge with each site's own period (settings.retention.face_template_days)."""
    sites = {site.id: site.settings for site in session.scalars(select(Site))}
    return purge_unneeded_templates(session, lambda site_id: retention_periods(settings, sites.get(site_id)).face_template, now, dry_run=dry_run)


def face_record(session: Session, principal: Principal, person_id: int) -> dict[str, Any]:
    """What is held about a person's face (never the template itself); reading it is audited."""
    person = _person_for(session, principal, person_id, manage=False)
    audit.append(session, audit.NewEvent(kind="face.record_read", actor=principal.actor, site_id=person.site_id, person_id=person.id))
    return face_data(session, person)


def face_data(session: Session, person: Person) -> dict[str, Any]:
    """The person's consents and template metadata, unaudited: for callers that audit the read themselves."""
    consents = session.scalars(select(FaceConsent).where(FaceConsent.person_id == person.id).order_by(FaceConsent.id)).all()
    templates = session.scalars(select(FaceTemplate).where(FaceTemplate.person_id == person.id).order_by(FaceTemplate.id)).all()
    return {
        "person_id": person.id,
        "site_id": person.site_id,
        "consents": [
            {
                "id": c.id,
                "purpose": c.purpose.value,
                "text_version": c.text_version,
                "language": c.language,
                "legacy_purpose": c.legacy_purpose,
                "method": c.method,
                "given_at": c.given_at,
                "recorded_by": c.recorded_by,
                "withdrawn_at": c.withdrawn_at,
                "withdrawn_by": c.withdrawn_by,
            }
            for c in consents
        ],
        "templates": [
            {"id": t.id, "pack": t.pack, "images_used": t.images_used, "quality": t.quality, "created_at": t.created_at, "updated_at": t.updated_at}
            for t in templates
        ],
    }


# --- door verification -----------------------------------------------------------------------------


@dataclass
class FaceMatch:
    """Who the face is (or why it cannot say), before any authorisation."""

    person_id: int | None
    score: float | None
    threshold: float
    reasons: list[str]
    warnings: list[str]
    quality: dict[str, Any]
    candidates: int = 0  # N: the templates the face was compared with
    policy: SitePolicy | None = field(default=None, repr=False)


@dataclass
class FaceDecision:
    allow: bool
    reasons: list[str]
    person_id: int | None
    score: float | None
    threshold: float | None
    warnings: list[str]
    quality: dict[str, Any]
    face_mode: str
    candidates: int = 0
    grant_id: int | None = None
    decision_id: str = field(default_factory=ids.decision_id)


def match_face(
    ctx: DoorContext, site_id: int, image: bytes, person_id: int | None = None, candidates: frozenset[int] | None = None
) -> FaceMatch:
    """Identify a frame's face within a site: 1:1 against person_id, else 1:N among `candidates` (the
    people who may pass the door; None = everyone of the site). No authorisation, no audit.

    For verify paths that combine the face with other evidence ("person and pass as one": the pass
    path passes its holder as person_id, then authorises and audits one decision itself).
    """
    engine = engine_for(ctx.settings)
    picture = decode_image(image, ctx.settings.face_max_pixels)  # bad bytes are a 4xx, not a decision
    with ctx.db.session() as session:
        site = session.get(Site, site_id)
        if site is None:
            raise scope.not_visible("site", site_id)
        policy = SitePolicy.of(ctx.settings, site)
    # Inference (~40 ms) runs outside any transaction, so it holds no database connection meanwhile.
    extraction = engine.extract(picture, policy.quality, check_liveness=policy.liveness_mode != "off")
    with ctx.db.session() as session:
        return _identify(ctx, session, engine.pack, policy, site_id, extraction, person_id, candidates)


def _identify(
    ctx: DoorContext,
    session: Session,
    pack: str,
    policy: SitePolicy,
    site_id: int,
    extraction: Extraction,
    claimed_person_id: int | None,
    candidates: frozenset[int] | None,
) -> FaceMatch:
    match = FaceMatch(None, None, door_threshold(ctx.settings, policy, 1).threshold, extraction.blocking_problems, [], extraction.quality(), policy=policy)
    if extraction.other_faces:
        match.warnings.append(OTHER_FACES)
    if extraction.spoof_suspected:
        # Advisory by default: the liveness model is not validated on real attacks (docs/models.md).
        (match.reasons if policy.liveness_mode == "enforce" else match.warnings).append(Reason.SPOOF_SUSPECTED)
    elif policy.liveness_mode == "enforce" and extraction.embedding is not None and extraction.liveness is None:
        match.warnings.append(LIVENESS_UNAVAILABLE)  # enforce asked for, but this pack has no liveness model
    if extraction.embedding is None or match.reasons:
        return match

    if claimed_person_id is not None:
        match.candidates = 1
        template = session.scalar(
            select(FaceTemplate).where(FaceTemplate.person_id == claimed_person_id, FaceTemplate.site_id == site_id, FaceTemplate.pack == pack)
        )
        if template is None:
            match.reasons.append(NO_TEMPLATE)
            return match
        vector = readable_embedding(ctx.sealer, ctx.bus, template, len(extraction.embedding))
        if vector is None:  # alarmed; to the door it is a person without a usable template
            match.reasons.append(NO_TEMPLATE)
            return match
        match.score = round(cosine(vector, extraction.embedding), 4)
        if match.score < match.threshold:
            match.reasons.append(FACE_MISMATCH)
            return match
        match.person_id = claimed_person_id
        return match

    gallery = GALLERIES.get(session, ctx.sealer, ctx.bus, ctx.db.url, site_id, pack, len(extraction.embedding))
    search = gallery.search(extraction.embedding, candidates)
    # The threshold follows N, the templates this face could be: each one is a chance for a stranger.
    match.candidates = search.candidates
    match.threshold = door_threshold(ctx.settings, policy, search.candidates).threshold
    if search.best_site is not None and search.best_site[1] >= match.threshold and search.best_site != search.best_candidate:
        # The best match over the whole site is not among the people who may pass here: a face that
        # looks more like an ungranted resident than like any granted one is that resident, and is
        # refused, not passed as the runner-up.
        match.person_id, score = search.best_site
        match.score = round(score, 4)
        match.reasons.append(NOT_A_CANDIDATE)
        return match
    if search.best_candidate is None or search.best_candidate[1] < match.threshold:
        match.score = None if search.best_candidate is None else round(search.best_candidate[1], 4)
        match.reasons.append(UNKNOWN_FACE)
        return match
    match.person_id, score = search.best_candidate
    match.score = round(score, 4)
    return match


def verify_at_door(
    ctx: DoorContext,
    principal: Principal,
    door_id: int,
    image: bytes,
    *,
    person_id: int | None = None,
    code: str | None = None,
    at: datetime | None = None,
) -> FaceDecision:
    """A lock's face decision under the door's face_mode: identify, authorise, audit."""
    principal.require_role(Role.device)
    principal.require_door(door_id)
    door = ctx.access.door(door_id)
    if door is None:
        raise scope.not_visible("door", door_id)
    at = at or utcnow()
    mode = door.face_mode
    decision = FaceDecision(False, [], None, None, None, [], {}, mode.value)
    candidates: frozenset[int] | None = None
    if mode is FaceMode.off:
        decision.reasons.append(FACE_NOT_ENABLED)
    elif person_id is None and mode is FaceMode.face_and_pass:
        decision.reasons.append(PASS_REQUIRED)
    elif person_id is None and mode is FaceMode.face_and_code:
        unit_id = ctx.access.unit_for_code(door.id, code) if code else None
        if not code:
            decision.reasons.append(CODE_REQUIRED)
        elif unit_id is None:
            decision.reasons.append(CODE_UNKNOWN)
        else:
            candidates = ctx.access.people_allowed(door.id, at, unit_id=unit_id)
    elif person_id is None:
        candidates = ctx.access.people_allowed(door.id, at)

    if not decision.reasons:
        match = match_face(ctx, door.site_id, image, person_id, candidates)
        decision.reasons, decision.person_id, decision.score = match.reasons, match.person_id, match.score
        decision.threshold, decision.warnings, decision.quality, decision.candidates = match.threshold, match.warnings, match.quality, match.candidates
        if mode is FaceMode.face_only and person_id is None and match.policy is not None:
            _warn_over_capacity(ctx, match.policy, decision)
    access = AccessResult.deny()  # no one to authorise: the face's own reasons say why
    if decision.person_id is not None:
        access = ctx.access.check(door.id, at, person_id=decision.person_id)
        if decision.reasons:  # as for passes: a use is counted (limited grants only) only when the face itself is fine
            access = dataclasses.replace(access, counts_uses=False)
    face_reasons = list(decision.reasons)

    def event_for(access: AccessResult) -> audit.NewEvent:
        decision.grant_id = access.grant_id
        decision.reasons = sorted(set(face_reasons) | set(access.reasons))
        decision.allow = access.allowed and not decision.reasons
        return audit.NewEvent(
            kind="decision",
            actor=principal.actor,
            site_id=door.site_id,
            unit_id=door.unit_id,
            door_id=door.id,
            person_id=decision.person_id,
            at=at,
            data={
                "decision_id": decision.decision_id,
                "method": "face" if person_id is None else "face_1to1",
                "face_mode": decision.face_mode,
                "allow": decision.allow,
                "reasons": decision.reasons,
                "warnings": decision.warnings,
                "score": decision.score,
                "threshold": decision.threshold,
                "candidates": decision.candidates,
                "code_given": code is not None,
                "pack": ctx.settings.face_pack,
                "grant_id": decision.grant_id,
                "quality": decision.quality,
            },
        )

    record_decision(ctx, access, event_for)
    return decision


def _warn_over_capacity(ctx: DoorContext, policy: SitePolicy, decision: FaceDecision) -> None:
    """face_only was safe when configured; tenants added since may have outgrown it. Strangers stay
    at the target (the threshold follows N), but fewer tenants get in: say so in every decision."""
    calibration: Calibration | None = load_calibration(ctx.settings)
    if calibration is None or decision.candidates > calibration.max_gallery(policy.target_fpir, policy.min_tpir):
        decision.warnings.append(OVER_CAPACITY)
