"""The receiving side of the sync feed, for bridges and lock makers: verify, then apply, never the
other way round.

Import this module (it needs only cbor2, cryptography, python-cwt and idsvc.passes.codec) and keep
one :class:`FeedState` per site::

    root = root_key(pinned_root_spki_der)            # from the bridge's configuration
    state = apply(None, snapshot_bytes, root, site_id=7)
    state = apply(state, delta_bytes, root, site_id=7)  # raises SyncError, state unchanged
    reasons = state.offline_reasons(claims.pass_id, kid, claims.status_index, claims.sub, door_id, now)

Checks, in order: size; the trust list (when the document carries one) signed by the pinned root
and not older than the one held; the document signed by an issuer key of that trust list that is
not withdrawn; type and site; versions only move forward (a snapshot may not be older than the
state, a delta must start exactly at the state's version) and the signed time never goes back, so
replaying an old document cannot un-revoke anything or make a stale cache look fresh.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cwt.cose_key_interface import COSEKeyInterface

from idsvc.passes import codec
from idsvc.registry.schedule import is_within

FEED_TYPE = "idsvc-sync/1"
MAX_FEED_BYTES = 64 * 1024 * 1024
MAX_LIST_BYTES = 1 << 20
VALID, REVOKED, SUSPENDED = 0, 1, 2
_PASS_REASON = {REVOKED: "pass_revoked", SUSPENDED: "pass_suspended"}


class SyncError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Issuer:
    key: COSEKeyInterface
    status: str  # active | retired | withdrawn
    verify_until: int | None


@dataclass(frozen=True)
class FeedState:
    site: int
    version: int
    iat: int  # signed time of the last applied document: now - iat is how stale this state is
    timezone: str
    trust_version: int
    issuers: dict[bytes, Issuer]
    status_bits: dict[bytes, bytes] = field(default_factory=dict)  # kid -> uncompressed 2-bit list
    passes: dict[bytes, dict[str, Any]] = field(default_factory=dict)  # pass id -> entry
    people: dict[bytes, str] = field(default_factory=dict)  # pseudonym -> status
    grants: dict[int, dict[str, Any]] = field(default_factory=dict)  # person grants carry "sub", vehicle grants "vehicle"
    vehicles: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {id, plate (plate_key), status, owner (sub or None)}
    templates: dict[bytes, list[dict[str, Any]]] = field(default_factory=dict)  # pseudonym -> sealed templates
    bridge: dict[str, Any] = field(default_factory=dict)  # the site's bridge settings (max_clock_skew_s)
    faces_shared: bool = False  # the site shares face templates with its bridges (a delta's say is the newest)
    face_policy: dict[str, Any] = field(default_factory=dict)  # pack, threshold, threshold_floor, target_fpir: the service's face thresholds
    face_modes: dict[int, str] = field(default_factory=dict)  # door id -> face_mode (off, face_and_pass, face_and_code, face_only)

    def pass_status(self, pass_id: bytes, kid: bytes, index: int) -> int:
        """The feed's own entry wins (it is newer than any list); else the issuer's status list."""
        entry = self.passes.get(pass_id)
        if entry is not None:
            return int(entry["status"])
        bits = self.status_bits.get(kid)
        if bits is None or not 0 <= index < len(bits) * 4:
            return REVOKED  # no list for this key or an index outside it: not a pass we can vouch for
        return (bits[index // 4] >> (2 * (index % 4))) & 3

    def key_reasons(self, pass_id: bytes, kid: bytes, index: int, at: datetime) -> list[str]:
        """The issuer key's and the pass's own state (signature and expiry already checked)."""
        reasons = []
        issuer = self.issuers.get(kid)
        if issuer is None:
            reasons.append("kid_unknown")
        elif issuer.status == "withdrawn":
            reasons.append("issuer_key_withdrawn")
        elif issuer.status == "retired" and issuer.verify_until is not None and at.timestamp() > issuer.verify_until:
            reasons.append("issuer_key_expired")
        state = self.pass_status(pass_id, kid, index)
        if state != VALID:
            reasons.append(_PASS_REASON.get(state, "pass_status_unknown"))
        return reasons

    def subject_access(self, sub: bytes, door_id: int, at: datetime, used: Mapping[int, int] | None = None) -> Access:
        """May the person ``sub`` pass ``door_id`` at ``at``: their status and a usable grant.
        ``used``: uses of grants taken at this receiver that the feed does not count yet."""
        reasons = _status_reasons(self.people.get(sub))
        grants = [g for g in self.grants.values() if g.get("sub") == sub and door_id in g["door_ids"]]
        return _authorise(reasons, grants, at, self.timezone, used or {})

    def vehicle_access(self, plate_key: bytes, door_id: int, at: datetime, used: Mapping[int, int] | None = None) -> Access:
        """May the vehicle whose plate key is ``plate_key`` (see :func:`plate_key`) pass ``door_id``:
        its status and its owner's, and a usable grant of the vehicle."""
        vehicle = next((v for v in self.vehicles.values() if v["plate"] == plate_key), None)
        if vehicle is None:
            return Access(["subject_unknown"])
        reasons = _status_reasons(vehicle["status"]) + _status_reasons(self.people.get(vehicle["owner"]) if vehicle.get("owner") else None)
        grants = [g for g in self.grants.values() if g.get("vehicle") == vehicle["id"] and door_id in g["door_ids"]]
        return _authorise(reasons, grants, at, self.timezone, used or {})

    def offline_reasons(self, pass_id: bytes, kid: bytes, index: int, sub: bytes, door_id: int, at: datetime) -> list[str]:
        """Why the holder of a pass (signature and expiry already checked) may not open ``door_id``
        at ``at`` by this state; empty = allow. Same reason codes as the service."""
        return self.key_reasons(pass_id, kid, index, at) + self.subject_access(sub, door_id, at).reasons


@dataclass(frozen=True)
class Access:
    """An offline authorisation: every reason against, or the grant that allows (and whether it counts uses)."""

    reasons: list[str]
    grant_id: int | None = None
    counts_uses: bool = False

    @property
    def allowed(self) -> bool:
        return not self.reasons


def _status_reasons(status: str | None) -> list[str]:
    return [f"subject_{status}"] if status in ("suspended", "revoked") else []


def _authorise(reasons: list[str], grants: list[dict[str, Any]], at: datetime, timezone: str, used: Mapping[int, int]) -> Access:
    """The service's registry.access.evaluate on feed entries: a usable grant and no other reason."""
    if not grants:
        return Access(reasons + ["no_grant_for_door"])
    problems: list[str] = []
    for grant in sorted(grants, key=lambda g: g["id"]):
        found = _grant_problems(grant, at, timezone, used.get(grant["id"], 0))
        if not found:
            return Access(reasons) if reasons else Access([], grant["id"], grant.get("max_uses") is not None)
        problems += found
    return Access(reasons + sorted(set(problems)))


def _grant_problems(grant: dict[str, Any], at: datetime, timezone: str, used_here: int = 0) -> list[str]:
    problems = []
    if grant["status"] != "active":
        problems.append(f"grant_{grant['status']}")
    stamp = at.timestamp()
    if stamp < grant["from"]:
        problems.append("grant_not_yet_valid")
    if stamp >= grant["until"]:
        problems.append("grant_expired")
    if not is_within(grant["schedule"], at, timezone):
        problems.append("outside_schedule")
    if grant.get("max_uses") is not None and grant.get("uses", 0) + used_here >= grant["max_uses"]:
        problems.append("uses_exhausted")
    return problems


def plate_key(site_key: bytes, plate: str) -> bytes:
    """How the feed names a vehicle: HMAC-SHA256 under the site's feed key of its normalised plate
    (core.validation.normalise_plate), 16 bytes. A feed read without the key reveals no plate."""
    mac = hmac.new(hashlib.sha256(b"idsvc-sync-plate:v1" + site_key).digest(), plate.encode(), hashlib.sha256)
    return mac.digest()[:16]


def root_key(spki_der: bytes) -> COSEKeyInterface:
    """The pinned root key (DER SubjectPublicKeyInfo, as ``GET /v1/passes/trust-list`` names its signer)."""
    public = serialization.load_der_public_key(spki_der)
    return codec.cose_public_key(public, codec.kid_of(public))


def _signed(document: bytes, key_for: Any, what: str) -> tuple[dict[Any, Any], bytes]:
    try:
        message = codec.parse_sign1(document)
        if message.kid is None:
            raise SyncError("feed_invalid", f"the {what} names no signing key")
        codec.verify_signature(message, key_for(message.kid))
        body = codec.cbor_loads(message.payload, what)
    except codec.CodecError as exc:
        raise SyncError("feed_signature_invalid" if exc.code == "signature_invalid" else "feed_invalid", f"{what}: {exc.message}") from None
    if not isinstance(body, dict) or not isinstance(body.get("version"), int) or not isinstance(body.get("iat"), int):
        raise SyncError("feed_invalid", f"the {what} lacks version and iat")
    return body, message.kid


def read_trust_list(document: bytes, root: COSEKeyInterface) -> tuple[int, dict[bytes, Issuer]]:
    def only_root(kid: bytes) -> COSEKeyInterface:
        if kid != root.kid:
            raise SyncError("feed_untrusted", "the trust list is not signed by the pinned root key")
        return root

    body, _ = _signed(document, only_root, "trust list")
    issuers = {}
    for entry in body.get("keys", []):
        public = serialization.load_der_public_key(entry["spki"])
        issuers[entry["kid"]] = Issuer(codec.cose_public_key(public, entry["kid"]), entry["status"], entry.get("verify_until"))
    return body["version"], issuers


def _issuer_key(issuers: dict[bytes, Issuer], what: str) -> Any:
    def lookup(kid: bytes) -> COSEKeyInterface:
        known = issuers.get(kid)
        if known is None or known.status == "withdrawn":
            raise SyncError("feed_untrusted", f"the {what} is not signed by a trusted issuer key")
        return known.key

    return lookup


def _status_bits(document: bytes, issuers: dict[bytes, Issuer]) -> tuple[bytes, bytes]:
    body, kid = _signed(document, _issuer_key(issuers, "status list"), "status list")
    if body.get("bits") != 2 or not isinstance(body.get("lst"), bytes):
        raise SyncError("feed_invalid", "a status list is not a 2-bit list")
    inflater = zlib.decompressobj()
    bits = inflater.decompress(body["lst"], MAX_LIST_BYTES)
    if inflater.unconsumed_tail:
        raise SyncError("feed_invalid", "a status list inflates beyond any real list")
    return kid, bits


def apply(state: FeedState | None, document: bytes, root: COSEKeyInterface, *, site_id: int) -> FeedState:
    """The state after ``document``; raises :class:`SyncError` (and changes nothing) if it is not
    authentic, not for this site, or would move the state backwards."""
    if len(document) > MAX_FEED_BYTES:
        raise SyncError("feed_invalid", "the feed is larger than any real feed")
    # The trust list inside the document, if any, must come first: it names the feed's signer.
    try:
        peek = codec.cbor_loads(codec.parse_sign1(document).payload, "the feed")
    except codec.CodecError as exc:
        raise SyncError("feed_invalid", f"the feed: {exc.message}") from None
    trust_doc = peek.get("trust_list") if isinstance(peek, dict) else None
    if trust_doc is not None:
        trust_version, issuers = read_trust_list(trust_doc, root)
        if state is not None and trust_version < state.trust_version:
            raise SyncError("feed_rollback", f"trust list version {trust_version} is older than {state.trust_version}")
    elif state is not None:
        trust_version, issuers = state.trust_version, state.issuers
    else:
        raise SyncError("feed_invalid", "a first feed must carry the trust list")
    body, _ = _signed(document, _issuer_key(issuers, "feed"), "feed")
    if body.get("type") != FEED_TYPE or body.get("site") != site_id:
        raise SyncError("feed_wrong_site", f"this feed is {body.get('type')} for site {body.get('site')}, not site {site_id}")
    since, version = body.get("since"), body["version"]
    if state is not None:
        if since is None and version < state.version:
            raise SyncError("feed_rollback", f"snapshot version {version} is older than {state.version}")
        if since is not None and since != state.version:
            raise SyncError("feed_gap", f"delta starts at {since}, state is at {state.version}: ask for the delta since {state.version}")
        if body["iat"] < state.iat:
            raise SyncError("feed_rollback", "the feed was signed before the one already applied")
    elif since is not None:
        raise SyncError("feed_gap", "a first feed must be a snapshot")

    if since is None:
        base = FeedState(site_id, version, body["iat"], body["timezone"], trust_version, issuers)
        bits = dict(_status_bits(doc, issuers) for doc in body.get("status_lists") or [])
        base = replace(base, status_bits=bits)
    else:
        assert state is not None
        base = replace(state, version=version, iat=body["iat"], trust_version=trust_version, issuers=issuers,
                       passes=dict(state.passes), people=dict(state.people), grants=dict(state.grants), templates=dict(state.templates),
                       vehicles=dict(state.vehicles), face_modes=dict(state.face_modes))
    if isinstance(body.get("bridge"), dict):
        base = replace(base, bridge=dict(body["bridge"]))
    base = replace(base, faces_shared=body.get("faces") is True)
    if isinstance(body.get("face_policy"), dict):
        base = replace(base, face_policy=dict(body["face_policy"]))
    removed = body.get("removed") or {}
    for pass_id in removed.get("passes", []):
        base.passes.pop(pass_id, None)
    for sub in removed.get("people", []):
        base.people.pop(sub, None)
    for grant_id in removed.get("grants", []):
        base.grants.pop(grant_id, None)
    for sub in removed.get("templates", []):
        base.templates.pop(sub, None)
    for vehicle_id in removed.get("vehicles", []):
        base.vehicles.pop(vehicle_id, None)
    for door_id in removed.get("doors", []):
        base.face_modes.pop(door_id, None)
    base.face_modes.update({d["id"]: d["face_mode"] for d in body.get("doors", [])})
    base.passes.update({p["pass_id"]: p for p in body.get("passes", [])})
    base.people.update({p["sub"]: p["status"] for p in body.get("people", [])})
    base.grants.update({g["id"]: g for g in body.get("grants", [])})
    base.vehicles.update({v["id"]: v for v in body.get("vehicles", [])})
    fresh: dict[bytes, list[dict[str, Any]]] = {}
    for template in body.get("templates", []):
        fresh.setdefault(template["sub"], []).append(template)
    base.templates.update(fresh)
    return base


def template_aad(site_id: int, sub: bytes, pack: str) -> bytes:
    """Binds a feed template to its site, person and model pack: a blob moved elsewhere does not open."""
    return f"idsvc-sync-face:v1:site={site_id}:sub={sub.hex()}:pack={pack}".encode()


def open_template(face_key: bytes, site_id: int, template: dict[str, Any]) -> bytes:
    """The float32 little-endian embedding of a feed template, with the site key given at provisioning."""
    sealed = template["sealed"]
    return AESGCM(face_key).decrypt(sealed[:12], sealed[12:], template_aad(site_id, template["sub"], template["pack"]))
