"""Offline decisions from the site's signed sync feed (idsvc.sync, docs/sync.md), verified before use.

A :class:`FeedSource` hands over signed feed documents: a full snapshot, or the delta since the
version the bridge holds. :class:`OfflineCache` applies them with the service's own receiver
(``idsvc.sync.verify.apply``: trust list signed by the root key pinned in the bridge config, feed
signed by an issuer key of that list, this site only, versions and signed times only move forward,
so replaying an old document cannot lift a revocation or make a stale copy look fresh). The applied
documents are kept on disk and applied again at start. A QR is then decided like the service does:
codec, signature by a trusted issuer key, claims, expiry, dynamic presentation (replay-checked at
this bridge), then the key and pass state and ``FeedState.subject_access``: person status and a
grant for this door now (dates, status, weekly schedule, uses). A plate is looked up by its keyed
digest (the site key, given at provisioning) among the feed's vehicles and their grants; a person
the terminal identified itself (remote verification) by their pseudonym.

Use limits: the feed carries each grant's count; an offline allow on a limited grant is journalled
with the grant and counted here on top (journal ``offline_uses``) until a feed fetched after the
service stored that event counts it itself (the service adds offline uses when it stores them).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives import serialization
from cwt.cose_key_interface import COSEKeyInterface

from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Decision
from door_firmware_bridge.offline_faces import OfflineFaces
from idsvc.core.kv import MemoryStore
from idsvc.core.validation import normalise_plate
from idsvc.passes import codec, dynamic
from idsvc.passes.claims import ISSUER, parse_claims
from idsvc.sync import verify
from idsvc.sync.events import aversions
from idsvc.sync.verify import Access, FeedState, SyncError, plate_key

FEED_FILE = "feed.cose"  # what a file feed reads: the latest snapshot a sync agent dropped
CLOCK_SKEW_S = 300
COMPACT_AFTER = 200  # deltas kept on disk before the next fetch asks for a fresh snapshot

FeedError = SyncError  # raised with a stable ``code``: feed_signature_invalid, feed_untrusted, feed_rollback, ...


class FeedSource(Protocol):
    async def fetch(self, since: int | None) -> bytes:
        """One signed feed document: the delta after ``since``, or a snapshot (``since`` None)."""


class HttpFeedSource:
    """``GET /v1/sync/sites/{site}/feed?since=N`` and the version stream that says when to ask."""

    def __init__(self, base_url: str, device_key: str, site_id: int, timeout_s: float) -> None:
        self.site_id = site_id
        self._client = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {device_key}"}, timeout=timeout_s)

    async def fetch(self, since: int | None) -> bytes:
        params = {"since": since} if since is not None else {}
        answer = await self._client.get(f"/v1/sync/sites/{self.site_id}/feed", params=params)
        if answer.status_code == 409:  # feed_version_ahead: the service's database is older than our copy
            raise FeedError(
                "feed_version_ahead",
                "the service's feed is older than this bridge's copy (its database was restored or replaced); "
                "after checking that, reset this bridge's feed cache (docs/operations.md, After a restore)",
            )
        answer.raise_for_status()
        return answer.content

    async def versions(self) -> AsyncIterator[int]:
        """Feed versions as the service announces them (Server-Sent Events); ends when the stream does."""
        async with self._client.stream("GET", f"/v1/sync/sites/{self.site_id}/events", timeout=httpx.Timeout(10.0, read=None)) as answer:
            answer.raise_for_status()
            async for version in aversions(answer.aiter_lines()):
                yield version

    async def aclose(self) -> None:
        await self._client.aclose()


class FileFeedSource:
    """A snapshot dropped into a folder (by a sync agent, a USB stick, a test): write, then rename."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def fetch(self, since: int | None) -> bytes:
        return (self.folder / FEED_FILE).read_bytes()


def root_key(spki_b64: str) -> COSEKeyInterface:
    public = serialization.load_der_public_key(base64.b64decode(spki_b64))
    return codec.cose_public_key(public, codec.kid_of(public))


class OfflineCache:
    def __init__(self, root_spki_b64: str, site_id: int, max_staleness_s: int, cache_dir: Path,
                 uses: Callable[[], Mapping[int, int]] = dict, site_key: bytes | None = None, faces: OfflineFaces | None = None) -> None:
        self._root = root_key(root_spki_b64)
        self.site_id = site_id
        self.site_key = site_key  # the site's feed key: plate digests (and face templates)
        self._uses = uses  # offline uses the held feed does not count yet (the journal's offline_uses)
        self.faces = faces
        self.max_staleness_s = max_staleness_s
        self.folder = cache_dir / "feed"
        self.state: FeedState | None = None
        self._kept = 0  # documents on disk since the last snapshot
        self._replay = MemoryStore(max_keys=200_000)  # dynamic presentations seen at this bridge

    @property
    def since(self) -> int | None:
        """What to ask for next: the delta after our version, or a snapshot to start or compact."""
        return None if self.state is None or self._kept >= COMPACT_AFTER else self.state.version

    def want_snapshot(self) -> None:
        """Ask for a full snapshot next (after a delta that did not fit); the verified state stays in use."""
        self._kept = COMPACT_AFTER

    @property
    def versions(self) -> dict[str, int | None]:
        state = self.state
        return {"feed": state.version, "trust_list": state.trust_version, "feed_iat": state.iat} if state else {"feed": None}

    def apply(self, document: bytes, *, persist: bool = True) -> FeedState:
        """Verify and apply one document; on any refusal (FeedError) the state is unchanged."""
        state = verify.apply(self.state, document, self._root, site_id=self.site_id)
        if persist:
            self._persist(document, snapshot=_is_snapshot(document))
        self.state = state
        return state

    def _persist(self, document: bytes, *, snapshot: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if snapshot:
            for old in self.folder.glob("*.cose"):
                old.unlink()
            self._kept = 0
        self._kept += 1
        tmp = self.folder / ".incoming"
        tmp.write_bytes(document)
        tmp.replace(self.folder / f"{self._kept:06d}.cose")  # atomic: a crash leaves whole documents only

    def load_persisted(self) -> FeedState | None:
        """At start: the kept documents applied again in order (stale or not: staleness is per decision)."""
        documents = sorted(self.folder.glob("*.cose")) if self.folder.is_dir() else []
        try:
            for path in documents:
                self.apply(path.read_bytes(), persist=False)
        except (OSError, SyncError):
            self.state = None  # a damaged copy is no copy: start over from a snapshot
            return None
        self._kept = len(documents)
        return self.state

    def staleness_s(self, at: datetime) -> float | None:
        return None if self.state is None else at.timestamp() - self.state.iat

    def _usable(self, door: DoorConfig, credential: str, at: datetime) -> tuple[FeedState | None, Decision | None]:
        """The state to decide from, or the refusal that comes before any credential is read."""
        state = self.state
        if credential == "qr" and not door.offline_qr:
            return None, Decision.deny("offline", credential, "offline_not_allowed_for_door")
        if state is None:
            return None, Decision.deny("offline", credential, "offline_cache_missing")
        age = at.timestamp() - state.iat
        if age > self.max_staleness_s:
            return None, Decision.deny("offline", credential, "offline_cache_stale", versions=self.versions | {"age_s": int(age)})
        if age < -CLOCK_SKEW_S:
            return None, Decision.deny("offline", credential, "offline_clock_behind_feed", versions=self.versions)
        return state, None

    def _decision(self, credential: str, access: Access, extra: list[str], versions: dict[str, Any]) -> Decision:
        reasons = access.reasons + extra
        grant = {"grant_id": access.grant_id, "counts_uses": access.counts_uses} if not reasons else {}
        return Decision(not reasons, tuple(sorted(set(reasons))), "offline", credential, versions=self.versions | versions | grant)

    def decide_qr(self, door: DoorConfig, text: str, at: datetime) -> Decision:
        state, refusal = self._usable(door, "qr", at)
        if state is None:
            return refusal  # type: ignore[return-value]
        try:
            data = codec.decode_text(text)
            presentation = dynamic.parse(codec.cbor_loads(data, "the QR payload"))
            message = codec.parse_sign1(presentation.pass_token if presentation else data)
            if message.kid is None:
                return Decision.deny("offline", "qr", "kid_missing", versions=self.versions)
            if message.alg not in codec.PASS_ALGS:
                return Decision.deny("offline", "qr", "alg_not_allowed", versions=self.versions)
            issuer = state.issuers.get(message.kid)
            if issuer is None:
                return Decision.deny("offline", "qr", "kid_unknown", versions=self.versions)
            codec.verify_signature(message, issuer.key)
            claims = parse_claims(message.payload)
        except codec.CodecError as exc:
            return Decision.deny("offline", "qr", exc.code, versions=self.versions)
        reasons = state.key_reasons(claims.pass_id, message.kid, claims.status_index, at)
        if claims.iss != ISSUER:
            reasons.append("issuer_unknown")
        if at.timestamp() < claims.nbf:
            reasons.append("pass_not_yet_valid")
        if at.timestamp() >= claims.exp:
            reasons.append("pass_expired")
        if presentation is not None:
            reasons += dynamic.check(presentation, claims.holder_key, claims.pass_id, door.door_id, at, self._replay)
        elif claims.holder_key is not None:
            reasons.append("presentation_required")  # a static picture of a phone-bound pass: a screenshot
        access = state.subject_access(claims.sub, door.door_id, at, self._uses())
        return self._decision("qr", access, reasons, {"pass_id": claims.pass_id.hex()})

    def decide_plate(self, door: DoorConfig, plate: str, at: datetime) -> Decision:
        """A normalised plate read, by its keyed digest among the feed's vehicles."""
        state, refusal = self._usable(door, "plate", at)
        if state is None:
            return refusal  # type: ignore[return-value]
        if self.site_key is None:
            return Decision.deny("offline", "plate", "offline_plate_data_missing", versions=self.versions)
        access = state.vehicle_access(plate_key(self.site_key, normalise_plate(plate)), door.door_id, at, self._uses())
        return self._decision("plate", access, [], {})

    def decide_face(self, door: DoorConfig, jpeg: bytes, at: datetime) -> Decision:
        """1:N among the site's templates in the feed, then the grant check (offline_faces.py)."""
        state, refusal = self._usable(door, "face", at)
        if state is None:
            return refusal  # type: ignore[return-value]
        if self.faces is None or not state.faces_shared:
            return Decision.deny("offline", "face", "offline_face_not_allowed", versions=self.versions)
        match = self.faces.identify(state, door.door_id, jpeg, at)
        scores = {"score": match.score, "threshold": match.threshold, "candidates": match.candidates}
        if match.sub is None or match.reasons:
            return Decision(False, tuple(sorted(set(match.reasons))), "offline", "face", versions=self.versions | scores)
        return self._decision("face", state.subject_access(match.sub, door.door_id, at, self._uses()), [], scores | {"subject": match.sub.hex()})

    def decide_subject(self, door: DoorConfig, employee_no: str, at: datetime) -> Decision:
        """A person the terminal identified itself (its employeeNo is the feed pseudonym in hex)."""
        state, refusal = self._usable(door, "terminal", at)
        if state is None:
            return refusal  # type: ignore[return-value]
        try:
            sub = bytes.fromhex(employee_no)
        except ValueError:
            return Decision.deny("offline", "terminal", "subject_unknown", versions=self.versions)
        if len(sub) != 16:
            return Decision.deny("offline", "terminal", "subject_unknown", versions=self.versions)
        return self._decision("terminal", state.subject_access(sub, door.door_id, at, self._uses()), [], {"subject": employee_no})


def _is_snapshot(document: bytes) -> bool:
    """A verified document's ``since`` is None for a snapshot (read again only to file it correctly)."""
    body = codec.cbor_loads(codec.parse_sign1(document).payload, "the feed")
    return isinstance(body, dict) and body.get("since") is None
