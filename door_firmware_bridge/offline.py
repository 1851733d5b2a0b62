"""Offline decisions from a verified, staleness-checked local copy of the service's signed lists.

Until the signed sync feed of issue 5 exists, the feed is the pair of documents the service already
signs: the trust list (COSE_Sign1 by the root key, pinned in the bridge config) and the 2-bit status
list (COSE_Sign1 by an issuer key named in that trust list). A :class:`FeedSource` fetches them; the
:class:`OfflineCache` verifies both before use, refuses to go back to older versions (replaying an
old feed must not un-revoke a pass), keeps the raw documents on disk for restarts, and decides QR
passes with the same codec, claim and presentation checks as the service (idsvc.passes).

Offline authorisation is the pass's own signed scope: its site and door groups must include the
door's (from the bridge config). Grant schedules and use counts need the sync feed's grants (issue
5); until then a door that needs them should set ``offline_qr = false``.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives import serialization
from cwt.cose_key_interface import COSEKeyInterface

from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Decision
from idsvc.core.kv import MemoryStore
from idsvc.passes import codec, dynamic
from idsvc.passes.claims import ISSUER, parse_claims

TRUST_FILE, STATUS_FILE = "trust-list.cose", "status-list.cose"
STATUS_REVOKED, STATUS_SUSPENDED = 1, 2
CLOCK_SKEW_S = 300
MAX_LIST_BYTES = 1 << 20


class FeedError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class FeedSource(Protocol):
    """Where the signed documents come from; the sync feed of issue 5 plugs in here."""

    async def fetch(self) -> tuple[bytes, bytes]:
        """(trust list, status list) as signed COSE_Sign1 bytes; raises on any transport failure."""


class HttpFeedSource:
    def __init__(self, base_url: str, device_key: str, timeout_s: float) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {device_key}"}, timeout=timeout_s)

    async def fetch(self) -> tuple[bytes, bytes]:
        documents = []
        for path in ("/v1/passes/trust-list", "/v1/passes/status-list"):
            answer = await self._client.get(path)
            answer.raise_for_status()
            documents.append(answer.content)
        return documents[0], documents[1]

    async def aclose(self) -> None:
        await self._client.aclose()


class FileFeedSource:
    """Documents dropped into a folder (by a sync agent, a USB stick, a test)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def fetch(self) -> tuple[bytes, bytes]:
        return (self.folder / TRUST_FILE).read_bytes(), (self.folder / STATUS_FILE).read_bytes()


@dataclass(frozen=True)
class IssuerKey:
    key: COSEKeyInterface
    status: str  # active, retired, withdrawn
    verify_until: int | None

    def refusal(self, at: datetime) -> str | None:
        if self.status == "withdrawn":
            return "issuer_key_withdrawn"
        if self.status == "retired" and self.verify_until is not None and at.timestamp() > self.verify_until:
            return "issuer_key_expired"
        return None


@dataclass(frozen=True)
class Snapshot:
    trust_version: int
    status_version: int
    issued_at: int  # the older of the two documents' signed iat: the age of what we know
    keys: dict[bytes, IssuerKey]
    bits: bytes

    def status_of(self, index: int) -> int:
        if not 0 <= index < len(self.bits) * 4:
            return STATUS_REVOKED  # an index outside the list is not a valid pass
        return (self.bits[index // 4] >> (2 * (index % 4))) & 3

    @property
    def versions(self) -> dict[str, int]:
        return {"trust_list": self.trust_version, "status_list": self.status_version, "feed_iat": self.issued_at}


def root_key(spki_b64: str) -> COSEKeyInterface:
    public = serialization.load_der_public_key(base64.b64decode(spki_b64))
    return codec.cose_public_key(public, codec.kid_of(public))


def _signed_body(document: bytes, key_for: Any, what: str) -> tuple[dict[Any, Any], bytes]:
    """Verify a COSE_Sign1 and return its CBOR map body and the signer's kid."""
    try:
        message = codec.parse_sign1(document)
        if message.kid is None:
            raise FeedError("feed_invalid", f"the {what} names no signing key")
        key = key_for(message.kid)
        codec.verify_signature(message, key)
        body = codec.cbor_loads(message.payload, what)
    except codec.CodecError as exc:
        raise FeedError("feed_signature_invalid" if exc.code == "signature_invalid" else "feed_invalid", f"{what}: {exc.message}") from None
    if not isinstance(body, dict) or not isinstance(body.get("version"), int) or not isinstance(body.get("iat"), int):
        raise FeedError("feed_invalid", f"the {what} lacks version and iat")
    return body, message.kid


def verify_feed(root: COSEKeyInterface, trust_doc: bytes, status_doc: bytes) -> Snapshot:
    if len(trust_doc) > MAX_LIST_BYTES or len(status_doc) > MAX_LIST_BYTES:
        raise FeedError("feed_invalid", "a feed document is larger than any real list")

    def root_only(kid: bytes) -> COSEKeyInterface:
        if kid != root.kid:
            raise FeedError("feed_untrusted", "the trust list is not signed by the pinned root key")
        return root

    trust, _ = _signed_body(trust_doc, root_only, "trust list")
    keys: dict[bytes, IssuerKey] = {}
    for entry in trust.get("keys", []):
        public = serialization.load_der_public_key(entry["spki"])
        keys[entry["kid"]] = IssuerKey(codec.cose_public_key(public, entry["kid"]), entry["status"], entry.get("verify_until"))

    def issuer(kid: bytes) -> COSEKeyInterface:
        known = keys.get(kid)
        if known is None or known.status == "withdrawn":
            raise FeedError("feed_untrusted", "the status list is not signed by a trusted issuer key")
        return known.key

    status, _ = _signed_body(status_doc, issuer, "status list")
    if status.get("bits") != 2 or not isinstance(status.get("lst"), bytes):
        raise FeedError("feed_invalid", "the status list is not a 2-bit list")
    try:
        bits = zlib.decompress(status["lst"], bufsize=MAX_LIST_BYTES)
    except zlib.error:
        raise FeedError("feed_invalid", "the status list does not inflate") from None
    return Snapshot(trust["version"], status["version"], min(trust["iat"], status["iat"]), keys, bits)


class OfflineCache:
    def __init__(self, root_spki_b64: str, max_staleness_s: int, cache_dir: Path) -> None:
        self._root = root_key(root_spki_b64)
        self.max_staleness_s = max_staleness_s
        self.cache_dir = cache_dir
        self.snapshot: Snapshot | None = None
        self._replay = MemoryStore(max_keys=200_000)  # dynamic presentations seen at this bridge

    def load(self, trust_doc: bytes, status_doc: bytes, *, persist: bool = True) -> Snapshot:
        """Verify and take a new feed; an older version than the one held is refused (no rollback)."""
        snap = verify_feed(self._root, trust_doc, status_doc)
        old = self.snapshot
        if old is not None and (snap.trust_version < old.trust_version or snap.status_version < old.status_version):
            raise FeedError("feed_rollback", f"feed versions {snap.versions} are older than the cached {old.versions}")
        if persist:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            for name, data in ((TRUST_FILE, trust_doc), (STATUS_FILE, status_doc)):
                tmp = self.cache_dir / f".{name}.tmp"
                tmp.write_bytes(data)
                tmp.replace(self.cache_dir / name)  # atomic: a crash leaves the old or the new file
        self.snapshot = snap
        return snap

    def load_persisted(self) -> Snapshot | None:
        """At start: the last feed kept on disk, verified again (stale or not; staleness is checked per decision)."""
        try:
            return self.load((self.cache_dir / TRUST_FILE).read_bytes(), (self.cache_dir / STATUS_FILE).read_bytes(), persist=False)
        except (FileNotFoundError, FeedError):
            return None

    def staleness_s(self, at: datetime) -> float | None:
        return None if self.snapshot is None else at.timestamp() - self.snapshot.issued_at

    def decide_qr(self, door: DoorConfig, text: str, at: datetime) -> Decision:
        snap = self.snapshot
        if not door.offline_qr:
            return Decision.deny("offline", "qr", "offline_not_allowed_for_door")
        if snap is None:
            return Decision.deny("offline", "qr", "offline_cache_missing")
        age = at.timestamp() - snap.issued_at
        if age > self.max_staleness_s:
            return Decision.deny("offline", "qr", "offline_cache_stale", versions=snap.versions | {"age_s": int(age)})
        if age < -CLOCK_SKEW_S:
            return Decision.deny("offline", "qr", "offline_clock_behind_feed", versions=snap.versions)
        reasons, pass_id = self._identify(snap, door, text, at)
        versions = snap.versions | {"pass_id": pass_id}
        return Decision(not reasons, tuple(sorted(set(reasons))), "offline", "qr", versions=versions)

    def _identify(self, snap: Snapshot, door: DoorConfig, text: str, at: datetime) -> tuple[list[str], str | None]:
        try:
            data = codec.decode_text(text)
            presentation = dynamic.parse(codec.cbor_loads(data, "the QR payload"))
            message = codec.parse_sign1(presentation.pass_token if presentation else data)
            if message.kid is None:
                return ["kid_missing"], None
            if message.alg not in codec.PASS_ALGS:
                return ["alg_not_allowed"], None
            issuer = snap.keys.get(message.kid)
            if issuer is None:
                return ["kid_unknown"], None
            codec.verify_signature(message, issuer.key)
            claims = parse_claims(message.payload)
        except codec.CodecError as exc:
            return [exc.code], None
        reasons = [r for r in (issuer.refusal(at),) if r]
        if claims.iss != ISSUER:
            reasons.append("issuer_unknown")
        if at.timestamp() < claims.nbf:
            reasons.append("pass_not_yet_valid")
        if at.timestamp() >= claims.exp:
            reasons.append("pass_expired")
        state = snap.status_of(claims.status_index)
        if state == STATUS_REVOKED:
            reasons.append("pass_revoked")
        elif state == STATUS_SUSPENDED:
            reasons.append("pass_suspended")
        elif state != 0:
            reasons.append("pass_status_unknown")
        if claims.scope.site_id != door.site_id or not set(claims.scope.door_group_ids) & set(door.door_group_ids):
            reasons.append("no_grant_for_door")
        if presentation is not None:
            reasons += dynamic.check(presentation, claims.holder_key, claims.pass_id, door.door_id, at, self._replay)
        elif claims.holder_key is not None:
            reasons.append("presentation_required")
        return reasons, claims.pass_id.hex()
