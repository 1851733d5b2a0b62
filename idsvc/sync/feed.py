"""The signed sync feed of one site: a full snapshot, or the delta since a version the bridge holds.

A delta is state-based: the change log (sync/changes.py) says which entities changed after version
N, and the delta carries their state at the current version V (or their removal). Applying the
deltas N->V in order, or one delta N->V, gives the same result, and a bridge that was offline for
a week asks once. A bridge older than the pruned log gets a full snapshot.

The document is a COSE_Sign1 by the active issuer key, which the trust list (signed by the root
key the bridge pins) names. Contents carry pseudonymous ids only (person pseudonyms, random pass
ids, vehicles by a keyed digest of their plate, never the plate); face templates only where
``Site.settings["sync"]["faces"]`` is true, encrypted with the site's feed key. Grants carry their
use counts, so a bridge can count uses offline on top. Format reference for lock makers: docs/sync.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import cbor2
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from idsvc.config import Settings
from idsvc.core.bus import Bus
from idsvc.core.db import utcnow
from idsvc.core.errors import Conflict
from idsvc.core.sealing import Sealer
from idsvc.faces import gallery
from idsvc.faces.policy import SitePolicy
from idsvc.faces.models import ConsentPurpose, FaceConsent, FaceTemplate
from idsvc.passes import codec, keys, status
from idsvc.passes.models import IssuerKey, KeyPurpose, KeyStatus, Pass
from idsvc.registry.models import Door, DoorGroup, Grant, Person, Site, Status, Vehicle
from idsvc.registry.scope import load
from idsvc.registry.site_settings import bridge_settings
from idsvc.sync import changes
from idsvc.sync.models import SyncChange, SyncSiteKey, SyncVersion
from idsvc.sync.verify import FEED_TYPE, plate_key, template_aad

_STATUS_CODE = {Status.active: 0, Status.revoked: 1, Status.suspended: 2}


def faces_allowed(site: Site) -> bool:
    return bool((site.settings or {}).get("sync", {}).get("faces", False))


def _site_key_aad(site_id: int) -> str:
    return f"sync-site-key:site={site_id}"


def resealed_site_key(sealer: Sealer, row: SyncSiteKey) -> dict[str, bytes]:
    """The site's feed key re-sealed under the current master key (master-key rotation); same key."""
    aad = _site_key_aad(row.site_id)
    return {"sealed_key": sealer.seal(sealer.open(row.sealed_key, aad), aad)}


def site_face_key(session: Session, sealer: Sealer, site_id: int) -> bytes:
    """The site's feed key for templates (32 bytes, AES-256-GCM), created on first use."""
    aad = _site_key_aad(site_id)
    row = session.get(SyncSiteKey, site_id)
    if row is None:
        row = SyncSiteKey(site_id=site_id, sealed_key=sealer.seal(os.urandom(32), aad))
        session.add(row)
        session.flush()
    return sealer.open(row.sealed_key, aad)


@dataclass
class _Content:
    passes: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    vehicles: list[dict[str, Any]] = field(default_factory=list)
    doors: list[dict[str, Any]] = field(default_factory=list)
    removed: dict[str, list[Any]] = field(default_factory=lambda: {"passes": [], "people": [], "grants": [], "templates": [], "vehicles": [], "doors": []})


class _Builder:
    def __init__(self, session: Session, sealer: Sealer, bus: Bus, site: Site) -> None:
        self.s, self.sealer, self.bus, self.site = session, sealer, bus, site
        self.out = _Content()
        self._subs: dict[int, bytes] = {}
        self._face_key: AESGCM | None = None

    def sub(self, person_id: int) -> bytes:
        if person_id not in self._subs:
            self._subs[person_id] = bytes.fromhex(self.s.scalar(select(Person.pseudonym).where(Person.id == person_id)) or "")
        return self._subs[person_id]

    def add_pass(self, row: Pass) -> None:
        self.out.passes.append({
            "pass_id": bytes.fromhex(row.pass_id), "kid": bytes.fromhex(row.kid), "idx": row.status_index,
            "status": _STATUS_CODE[row.status], "sub": self.sub(row.person_id), "exp": int(row.expires_at.timestamp()),
            "holder_key": cbor2.loads(row.holder_key) if row.holder_key else None,
        })

    def add_person(self, row: Person) -> None:
        self.out.people.append({"sub": bytes.fromhex(row.pseudonym), "status": row.status.value})

    def add_grant(self, row: Grant, door_ids: list[int]) -> None:
        subject = {"sub": self.sub(row.person_id)} if row.person_id is not None else {"vehicle": row.vehicle_id}
        self.out.grants.append(subject | {
            "id": row.id, "door_ids": door_ids,
            "from": int(row.valid_from.timestamp()), "until": int(row.valid_until.timestamp()),
            "schedule": row.schedule, "max_uses": row.max_uses, "uses": row.uses, "status": row.status.value,
        })

    def add_door(self, row: Door) -> None:
        """How the door uses faces (a face alone is decided only at face_only doors, offline too)."""
        self.out.doors.append({"id": row.id, "face_mode": row.face_mode.value})

    def add_vehicle(self, row: Vehicle) -> None:
        """A vehicle by the keyed digest of its plate (the bridge computes the same from a plate read)."""
        owner = self.sub(row.owner_person_id) if row.owner_person_id is not None else None
        self.out.vehicles.append({"id": row.id, "plate": plate_key(site_face_key(self.s, self.sealer, self.site.id), row.plate),
                                  "status": row.status.value, "owner": owner})

    def door_ids(self, group_id: int) -> list[int]:
        group = self.s.get(DoorGroup, group_id)
        return [d.id for d in group.doors] if group else []

    def add_templates(self, person_id: int) -> None:
        """The person's templates re-encrypted under the site's feed key, or their removal."""
        sub = self.sub(person_id)
        rows = self.s.scalars(select(FaceTemplate).where(FaceTemplate.person_id == person_id, FaceTemplate.site_id == self.site.id)).all()
        if not rows:
            self.out.removed["templates"].append(sub)
            return
        if self._face_key is None:
            self._face_key = AESGCM(site_face_key(self.s, self.sealer, self.site.id))
        for row in rows:
            opened = gallery.readable_embedding(self.sealer, self.bus, row, row.dim)
            if opened is None:  # alarmed (face_template_unreadable); the site's feed goes out without it
                continue
            nonce = os.urandom(12)
            vector = opened.astype("<f4").tobytes()
            sealed = nonce + self._face_key.encrypt(nonce, vector, template_aad(self.site.id, sub, row.pack))
            self.out.templates.append({"sub": sub, "pack": row.pack, "dim": row.dim, "sealed": sealed})


def _offline_consented(session: Session, site_id: int) -> set[int]:
    """People of the site whose separate consent covers copying their template to its bridges: the
    2025 face-recognition measures keep face data on the device that uses it unless the person agrees."""
    return set(session.scalars(select(FaceConsent.person_id).where(
        FaceConsent.site_id == site_id, FaceConsent.purpose == ConsentPurpose.face_offline, FaceConsent.withdrawn_at.is_(None),
    )))


def _live_grants(site_id: int, *, people: bool = True) -> Select[tuple[Grant]]:
    """Person (or vehicle) grants of the site that have not ended: what the snapshot carries, and who
    may have a template there."""
    subject = Grant.person_id if people else Grant.vehicle_id
    return select(Grant).where(Grant.site_id == site_id, subject.is_not(None), Grant.status != Status.revoked, Grant.valid_until > utcnow())


def _full(b: _Builder) -> None:
    site_id = b.site.id
    for row in b.s.scalars(select(Pass).where(Pass.site_id == site_id, Pass.expires_at > utcnow()).order_by(Pass.id)):
        b.add_pass(row)
    grants = list(b.s.scalars(_live_grants(site_id).order_by(Grant.id)))
    groups = {g.door_group_id for g in grants}
    doors = {gid: b.door_ids(gid) for gid in groups}
    for grant in grants:
        b.add_grant(grant, doors[grant.door_group_id])
    vehicle_grants = list(b.s.scalars(_live_grants(site_id, people=False).order_by(Grant.id)))
    for grant in vehicle_grants:
        b.add_grant(grant, doors.get(grant.door_group_id) or b.door_ids(grant.door_group_id))
    vehicles = list(b.s.scalars(select(Vehicle).where(Vehicle.site_id == site_id, Vehicle.id.in_({g.vehicle_id for g in vehicle_grants})).order_by(Vehicle.id)))
    for vehicle in vehicles:
        b.add_vehicle(vehicle)
    for door in b.s.scalars(select(Door).where(Door.site_id == site_id).order_by(Door.id)):
        b.add_door(door)
    grantees = {g.person_id for g in grants}
    people = grantees | {v.owner_person_id for v in vehicles if v.owner_person_id is not None}
    for person in b.s.scalars(select(Person).where(Person.site_id == site_id, Person.id.in_(people)).order_by(Person.id)):
        b.add_person(person)
    if faces_allowed(b.site):
        enrolled = set(b.s.scalars(select(FaceTemplate.person_id).where(FaceTemplate.site_id == site_id)))
        for person_id in sorted(enrolled & grantees & _offline_consented(b.s, site_id)):  # type: ignore[operator]
            b.add_templates(person_id)


def _delta(b: _Builder, since: int, version: int) -> bool:
    """Fill the delta; True when the issuer keys changed (the trust list goes along)."""
    site_id = b.site.id
    rows = b.s.execute(
        select(SyncChange.section, SyncChange.key)
        .where(SyncChange.version > since, SyncChange.version <= version, (SyncChange.site_id == site_id) | SyncChange.site_id.is_(None))
        .distinct()
    ).all()
    touched: dict[str, set[str]] = {}
    for section, key in rows:
        touched.setdefault(section, set()).add(key)
    for pass_id in sorted(touched.get("pass", ())):
        row = b.s.scalar(select(Pass).where(Pass.pass_id == pass_id, Pass.site_id == site_id))
        if row is None:
            b.out.removed["passes"].append(bytes.fromhex(pass_id))
        else:
            b.add_pass(row)
    for pseudonym in sorted(touched.get("person", ())):
        person = b.s.scalar(select(Person).where(Person.pseudonym == pseudonym, Person.site_id == site_id))
        if person is None:
            b.out.removed["people"].append(bytes.fromhex(pseudonym))
        else:
            b.add_person(person)
    grant_ids = {int(k) for k in touched.get("grant", ())}
    group_ids = {int(k) for k in touched.get("door_group", ())}
    if group_ids:  # a door group's doors changed: every grant on it carries new door ids
        grant_ids |= set(b.s.scalars(select(Grant.id).where(Grant.door_group_id.in_(group_ids), Grant.site_id == site_id)))
    grantees: set[int] = set()
    vehicle_ids = {int(k) for k in touched.get("vehicle", ())}  # a vehicle changed, or a grant of it did
    for grant_id in sorted(grant_ids):
        grant = b.s.get(Grant, grant_id)
        if grant is None or grant.site_id != site_id:
            b.out.removed["grants"].append(grant_id)
        else:
            b.add_grant(grant, b.door_ids(grant.door_group_id))
            if grant.person_id is not None:
                grantees.add(grant.person_id)
            else:
                vehicle_ids.add(grant.vehicle_id)  # type: ignore[arg-type]
    for door_id in sorted(int(k) for k in touched.get("door", ())):
        door = b.s.get(Door, door_id)
        if door is None or door.site_id != site_id:
            b.out.removed["doors"].append(door_id)
        else:
            b.add_door(door)
    for vehicle_id in sorted(vehicle_ids):
        vehicle = b.s.get(Vehicle, vehicle_id)
        if vehicle is None or vehicle.site_id != site_id:
            b.out.removed["vehicles"].append(vehicle_id)
        else:
            b.add_vehicle(vehicle)
    if faces_allowed(b.site):
        # Templates follow their own changes, consents and grants: no live grant or no consent to
        # the offline copy here, no template here.
        live = set(b.s.scalars(_live_grants(site_id).with_only_columns(Grant.person_id))) & _offline_consented(b.s, site_id)
        for person_id in sorted({int(k) for k in touched.get("template", ())} | grantees):
            if b.s.get(Person, person_id) is None:
                continue
            if person_id in live:
                b.add_templates(person_id)
            else:
                b.out.removed["templates"].append(b.sub(person_id))
    return bool(touched.get("trust"))


def status_lists(session: Session, sealer: Sealer) -> list[bytes]:
    """One signed list per issuer key that still verifies passes."""
    kids = session.scalars(select(IssuerKey.kid).where(IssuerKey.purpose == KeyPurpose.issuer, IssuerKey.status != KeyStatus.withdrawn).order_by(IssuerKey.id))
    return [status.status_list(session, sealer, kid) for kid in kids]


def face_policy(settings: Settings, site: Site) -> dict[str, Any]:
    """What a bridge needs to match faces offline with the service's own thresholds (faces.policy)."""
    policy = SitePolicy.of(settings, site)
    return {"pack": settings.face_pack, "threshold": settings.face_threshold, "threshold_floor": policy.threshold_floor, "target_fpir": policy.target_fpir}


def build(session: Session, sealer: Sealer, bus: Bus, settings: Settings, site_id: int, since: int | None = None) -> tuple[int, bytes]:
    """(version, signed document): the delta from ``since``, or a full snapshot when ``since`` is
    None or older than the pruned log. ``since`` above the current version is a Conflict (the
    bridge holds a feed from another database: it must start over with a snapshot)."""
    site = load(session, Site, site_id, "site")
    version, pruned_through = changes.current_version(session)
    if since is not None and since > version:
        raise Conflict(f"Feed version {since} is ahead of this service ({version}); ask for a snapshot.", code="feed_version_ahead")
    full = since is None or since < pruned_through
    b = _Builder(session, sealer, bus, site)
    keys_changed = True
    if full:
        _full(b)
    else:
        keys_changed = _delta(b, since, version)  # type: ignore[arg-type]
    body: dict[str, Any] = {
        "type": FEED_TYPE, "site": site_id, "timezone": site.timezone, "version": version, "since": None if full else since, "iat": int(utcnow().timestamp()),
        "faces": faces_allowed(site),
        "bridge": bridge_settings(site.settings).model_dump(),
        "face_policy": face_policy(settings, site),
        "doors": b.out.doors,
        "trust_list": keys.trust_list(session, sealer) if keys_changed else None,
        "status_lists": status_lists(session, sealer) if full else None,
        "passes": b.out.passes, "people": b.out.people, "grants": b.out.grants, "templates": b.out.templates, "vehicles": b.out.vehicles,
        "removed": b.out.removed,
    }
    signer = keys.active_issuer_key(session, sealer)
    return version, codec.sign(cbor2.dumps(body), keys.signing_key(signer, sealer))


def prune_older_than(session: Session, keep: timedelta, *, dry_run: bool = False) -> dict[str, int]:
    """Drop the change log older than ``keep`` (the daily job, `idsvc sync prune`)."""
    cutoff = session.scalar(select(func.max(SyncChange.version)).where(SyncChange.at < utcnow() - keep)) or 0
    if dry_run:
        return {"pruned_through": cutoff, "deleted": session.scalar(select(func.count()).select_from(SyncChange).where(SyncChange.version <= cutoff)) or 0}
    return {"pruned_through": cutoff, "deleted": prune(session, cutoff)}


def prune(session: Session, keep_versions_after: int) -> int:
    """Drop change-log rows at or below a version; bridges behind it get a full snapshot next time."""
    deleted = session.execute(delete(SyncChange).where(SyncChange.version <= keep_versions_after)).rowcount
    row = session.get(SyncVersion, 1)
    if row is not None:
        row.pruned_through = max(row.pruned_through, min(keep_versions_after, row.version))
    return int(deleted or 0)
