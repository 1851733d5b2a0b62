"""The QR decision: is this code a valid pass, fresh, not revoked, and may its holder open this door now?

Order (design/overview.md): identify (signature, trust, nbf/exp, status, presentation freshness and
replay) -> authorise (the registry's grant check for this door at this time) -> allow or deny with
every reason that applied. Default deny.

Hot-path data lives in process (performance.md: a Redis or database round trip costs more than the
signature check): trusted issuer keys, the set of revoked or suspended pass ids, and pass id ->
person. They reload when the trust or status version in the database changes, polled at most once
per ``refresh_seconds`` (so a revocation reaches every node within that time; the node that made the
change reloads at once via :meth:`PassVerifier.invalidate`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import service as audit
from idsvc.core import ids
from idsvc.core.db import utcnow
from idsvc.core.times import rfc3339
from idsvc.passes import codec, dynamic, keys, status, versions
from idsvc.passes.claims import ISSUER, PassClaims, parse_claims
from idsvc.passes.models import Pass
from idsvc.registry.access import AccessResult
from idsvc.registry.index import DoorContext, record_decision
from idsvc.registry.models import Status

_STATUS_REASON = {Status.revoked: "pass_revoked", Status.suspended: "pass_suspended"}


@dataclass
class Identification:
    """What the QR proved about its holder, before any door rule is applied."""

    reasons: list[str] = field(default_factory=list)
    claims: PassClaims | None = None
    kid: bytes | None = None
    pass_row_id: int | None = None
    person_id: int | None = None
    dynamic: bool = False
    trust_version: int = 0
    status_version: int = 0


@dataclass
class Decision:
    decision_id: str
    at: datetime
    door_id: int
    allow: bool
    reasons: list[str]
    person_id: int | None
    pass_row_id: int | None
    versions: dict[str, Any]
    presentation: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "decision": "allow" if self.allow else "deny",
            "allow": self.allow,
            "reasons": self.reasons,
            "door_id": self.door_id,
            "at": rfc3339(self.at),
            "presentation": self.presentation,
            "versions": self.versions,
        }


class DenyList(Protocol):
    """The instant deny set (revocation.denyset.DenySet, above passes): reasons for what a pass names."""

    def reasons(self, *, pass_id: bytes | None = None, sub: bytes | None = None, kid: bytes | None = None) -> list[str]: ...

    def rebuild(self, session: Session, *, shared: bool = True) -> bool:
        """Load this process's copy from the database (``shared=False``: leave the Redis copy alone)."""
        ...


class PassContext(DoorContext, Protocol):
    deny: DenyList


class PassVerifier:
    def __init__(
        self,
        ctx: PassContext,
        refresh_seconds: float = 1.0,
        max_cached_passes: int = 200_000,
        remember_tokens: bool = True,
    ) -> None:
        self.ctx = ctx
        self.refresh_seconds = refresh_seconds
        self._max_cached = max_cached_passes
        self._remember_tokens = remember_tokens  # off only to measure the first sight of a pass
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._versions: tuple[int, int] | None = None
        self._trust: dict[bytes, keys.TrustedKey] = {}
        self._non_valid: dict[bytes, Status] = {}
        self._passes: dict[bytes, tuple[int, int]] = {}  # pass id -> (row id, person id); never changes
        self._known_tokens: dict[bytes, tuple[keys.TrustedKey, PassClaims]] = {}
        # A change committed on any node reloads keys and statuses here at once (core/bus.py).
        ctx.bus.subscribe(self._on_notice)

    def _on_notice(self, notice: dict[str, Any]) -> None:
        if notice.get("deny") or notice.get("kind") == "resync":
            self.invalidate()

    def invalidate(self) -> None:
        """Reload keys and statuses before the next check (call after changing them in this process)."""
        self._checked_at = float("-inf")

    def _refresh(self) -> tuple[int, int]:
        now = time.monotonic()
        if self._versions is not None and now - self._checked_at < self.refresh_seconds:
            return self._versions
        with self._lock, self.ctx.db.session() as session:
            current = versions.read(session)
            old = self._versions
            if old is None or current[0] != old[0]:
                self._trust = keys.trusted_keys(session)
                self._known_tokens = {}
            if old is None or current[1] != old[1]:
                self._non_valid = status.non_valid(session)
            self._versions, self._checked_at = current, now
        return current

    def _lookup_pass(self, pass_id: bytes) -> tuple[int, int] | None:
        found = self._passes.get(pass_id)
        if found is None:
            with self.ctx.db.session() as session:
                row = session.execute(select(Pass.id, Pass.person_id).where(Pass.pass_id == pass_id.hex())).first()
            if row is None:
                return None
            if len(self._passes) >= self._max_cached:
                self._passes.clear()  # crude but bounded; a miss costs one indexed query
            found = self._passes[pass_id] = (row[0], row[1])
        return found

    def _verified(self, token: bytes, decoded: Any) -> tuple[keys.TrustedKey, PassClaims]:
        """Signature and claims of a pass token, remembered by its exact bytes.

        The same pass is shown again and again (daily entries, and inside every dynamic
        presentation), and the same bytes under the same trusted keys always verify the same way,
        so a repeat costs a dictionary lookup. The memory is dropped whenever the trust list changes.
        """
        trust = self._trust
        hit = self._known_tokens.get(token)
        if hit is not None and trust.get(hit[0].kid) is hit[0]:
            return hit
        message = codec.sign1_from(decoded)
        if message.kid is None:
            raise codec.CodecError("kid_missing", "the pass names no key id.")
        if message.alg not in codec.PASS_ALGS:
            raise codec.CodecError("alg_not_allowed", f"alg {message.alg} is not allowed for passes.")
        trusted = trust.get(message.kid)
        if trusted is None:
            raise codec.CodecError("kid_unknown", "the pass is signed by a key this service does not know.")
        codec.verify_signature(message, trusted.key)
        result = (trusted, parse_claims(message.payload))
        if self._remember_tokens:
            if len(self._known_tokens) >= self._max_cached:
                self._known_tokens.clear()
            self._known_tokens[token] = result
        return result

    def _standing(self, claims: PassClaims, trusted: keys.TrustedKey, at: datetime) -> tuple[list[str], tuple[int, int] | None]:
        """What the service's records say of a genuine pass, whatever the door: the state of its key,
        its issuer, its status, the instant deny set, and whether it is on record at all."""
        reasons = []
        refusal = trusted.refusal(at)
        if refusal:
            reasons.append(refusal)
        if claims.iss != ISSUER:
            reasons.append("issuer_unknown")
        non_valid = self._non_valid.get(claims.pass_id)
        if non_valid is not None:
            reasons.append(_STATUS_REASON[non_valid])
        # The instant deny set (revocation/denyset.py): pass, holder or key revoked on any node.
        reasons += [r for r in self.ctx.deny.reasons(pass_id=claims.pass_id, sub=claims.sub, kid=trusted.kid) if r not in reasons]
        known = self._lookup_pass(claims.pass_id)
        if known is None:
            reasons.append("pass_unknown")
        return reasons, known

    def standing(self, claims: PassClaims, kid: bytes, at: datetime) -> list[str]:
        """The same records check as a door's, for `idsvc pass inspect --service-keys` (empty: in good standing)."""
        self._refresh()
        trusted = self._trust.get(kid)
        if trusted is None:
            return ["kid_unknown"]
        return self._standing(claims, trusted, at)[0]

    def identify(self, text: str | None, door_id: int, at: datetime, challenge: bytes | None = None) -> Identification:
        """``text`` None means a camera frame held no readable QR."""
        trust_version, status_version = self._refresh()
        result = Identification(trust_version=trust_version, status_version=status_version)
        if text is None:
            result.reasons.append("qr_not_found")
            return result
        try:
            data = codec.decode_text(text)
            outer = codec.cbor_loads(data, "the QR payload")
            presentation = dynamic.parse(outer)
            if presentation is None:
                trusted, claims = self._verified(data, outer)
            else:
                trusted, claims = self._verified(presentation.pass_token, codec.cbor_loads(presentation.pass_token, "the pass"))
        except codec.CodecError as exc:
            result.reasons.append(exc.code)
            return result
        result.dynamic = presentation is not None
        result.kid = trusted.kid
        result.claims = claims
        reasons = result.reasons
        stamp = at.timestamp()
        if stamp < claims.nbf:
            reasons.append("pass_not_yet_valid")
        if stamp >= claims.exp:
            reasons.append("pass_expired")
        standing, known = self._standing(claims, trusted, at)
        reasons += standing
        if known is not None:
            result.pass_row_id, result.person_id = known
        if presentation is not None:
            reasons += dynamic.check(presentation, claims.holder_key, claims.pass_id, door_id, at, self.ctx.kv, challenge)
        elif claims.holder_key is not None:
            reasons.append("presentation_required")  # a static picture of a phone-bound pass: a screenshot
        return result

    def decide(self, door_id: int, text: str | None, *, actor: str, at: datetime | None = None, challenge: bytes | None = None) -> Decision:
        at = at or utcnow()
        ident = self.identify(text, door_id, at, challenge)
        door = self.ctx.access.door(door_id)
        if ident.person_id is None:
            access = AccessResult.deny()  # no one to authorise: the pass's own reasons say why
        elif ident.reasons:  # a use is counted only when the pass itself is fine
            access = dataclasses.replace(self.ctx.access.check(door_id, at, person_id=ident.person_id), counts_uses=False)
        else:
            access = self.ctx.access.check(door_id, at, person_id=ident.person_id)
        decisions: list[Decision] = []

        def event_for(access: AccessResult) -> audit.NewEvent:
            decision, event = self._decision(door_id, door, ident, access, actor=actor, at=at)
            decisions.append(decision)
            return event

        record_decision(self.ctx, access, event_for)
        return decisions[-1]

    def _decision(self, door_id: int, door: Any, ident: Identification, access: AccessResult, *, actor: str, at: datetime) -> tuple[Decision, audit.NewEvent]:
        reasons = list(ident.reasons) + list(access.reasons)
        grant_id = access.grant_id
        if door is None:
            reasons.append("door_unknown")
        reasons = sorted(set(reasons))
        decision = Decision(
            decision_id=ids.decision_id(),
            at=at,
            door_id=door_id,
            allow=not reasons,
            reasons=reasons,
            person_id=ident.person_id,
            pass_row_id=ident.pass_row_id,
            versions={"trust_list": ident.trust_version, "status_list": ident.status_version, "grant_id": grant_id},
            presentation=("dynamic" if ident.dynamic else "static") if ident.claims else None,
        )
        event = audit.NewEvent(
            kind="decision",
            actor=actor,
            at=at,
            site_id=door.site_id if door else None,
            unit_id=door.unit_id if door else None,
            door_id=door_id,
            person_id=ident.person_id,
            entity_type="pass" if ident.pass_row_id else None,
            entity_id=ident.pass_row_id,
            data={
                "decision_id": decision.decision_id,
                "method": "qr",
                "allow": decision.allow,
                "reasons": reasons,
                "kid": ident.kid.hex() if ident.kid else None,
                "pass_id": ident.claims.pass_id.hex() if ident.claims else None,
                "presentation": decision.presentation,
                "versions": decision.versions,
            },
        )
        return decision, event
