"""Dynamic presentations (anti-screenshot): the QR changes every 30 s and proves the phone holds a key.

The pass carries the phone's public key in ``cnf``. Every 30-second step the phone signs
``["NH1-presentation", SHA-256(pass), step, door_id, challenge]`` with its private key and shows

    PREFIX + base45( CBOR [pass, step, door_id or null, challenge or null, signature] )

The reader accepts the current step +-1 and each (pass, step, door) once, so a photographed code is
worthless 30-60 s later and at any other door. No shared secret sits in any reader (unlike TOTP).

:class:`Holder` is the reference holder a phone app mirrors: keep the private key in the platform
keystore, send the public half when the pass is issued, and call the equivalent of :meth:`present`
whenever the screen shows the code (again when the step changes, or a reader offers a challenge).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cwt.cose_key_interface import COSEKeyInterface

from idsvc.core.db import utcnow
from idsvc.core.kv import KeyValueStore, StoreUnavailable
from idsvc.passes import codec

STEP_SECONDS = 30
ACCEPTED_SKEW_STEPS = 1
MAX_CHALLENGE = 64
# The deny reason when the replay store does not answer; the device API also answers it as a 503.
REPLAY_STORE_UNAVAILABLE = "replay_store_unavailable"
_CONTEXT = "NH1-presentation"


def step_at(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


REPLAY_SLACK_SECONDS = 5


def replay_ttl(step: int, at: datetime) -> int:
    """Seconds a used (pass, step, door) must be remembered: until ``step`` is no longer accepted."""
    window_end = (step + ACCEPTED_SKEW_STEPS + 1) * STEP_SECONDS
    return max(1, int(window_end - at.timestamp()) + REPLAY_SLACK_SECONDS)


def _signed_bytes(pass_token: bytes, step: int, door_id: int | None, challenge: bytes | None) -> bytes:
    return cbor2.dumps([_CONTEXT, hashlib.sha256(pass_token).digest(), step, door_id, challenge])


@dataclass(frozen=True)
class Presentation:
    pass_token: bytes
    step: int
    door_id: int | None
    challenge: bytes | None
    signature: bytes


def parse(obj: Any) -> Presentation | None:
    """The presentation in an already decoded CBOR value, or None when it is a bare pass."""
    if not isinstance(obj, list):
        return None
    if len(obj) != 5:
        raise codec.CodecError("presentation_invalid", "a presentation is an array of 5 items.")
    pass_token, step, door_id, challenge, signature = obj
    if not isinstance(pass_token, bytes) or not isinstance(signature, bytes) or type(step) is not int:
        raise codec.CodecError("presentation_invalid", "presentation items have the wrong types.")
    if door_id is not None and type(door_id) is not int:
        raise codec.CodecError("presentation_invalid", "presentation door id is not an integer.")
    if challenge is not None and (not isinstance(challenge, bytes) or len(challenge) > MAX_CHALLENGE):
        raise codec.CodecError("presentation_invalid", "presentation challenge is not a short byte string.")
    return Presentation(pass_token, step, door_id, challenge, signature)


@lru_cache(maxsize=65_536)
def _holder_key(x: bytes) -> COSEKeyInterface:
    return codec.SodiumEd25519Key(x)


def check(
    presentation: Presentation,
    holder_key: dict[int, Any] | None,
    pass_id: bytes,
    door_id: int,
    at: datetime,
    kv: KeyValueStore,
    challenge: bytes | None = None,
) -> list[str]:
    """Reasons to refuse the presentation (empty = fresh, signed by the holder, first use here)."""
    if holder_key is None:
        return ["presentation_without_holder_key"]
    x = holder_key.get(-2)
    if holder_key.get(1) != 1 or holder_key.get(-1) != 6 or not isinstance(x, bytes) or len(x) != 32:
        return ["holder_key_unsupported"]
    message = _signed_bytes(presentation.pass_token, presentation.step, presentation.door_id, presentation.challenge)
    try:
        _holder_key(x).verify(message, presentation.signature)
    except Exception:
        return ["presentation_signature_invalid"]
    reasons = []
    if abs(presentation.step - step_at(at)) > ACCEPTED_SKEW_STEPS:
        reasons.append("presentation_stale" if presentation.step < step_at(at) else "presentation_from_future")
    if presentation.door_id is not None and presentation.door_id != door_id:
        reasons.append("presentation_other_door")
    if challenge is not None and presentation.challenge != challenge:
        reasons.append("presentation_challenge_mismatch")
    # Only a presentation that passed every other check may burn its (pass, step, door) slot. The
    # marker lives only until the step leaves the accepted window (plus clock slack): replay is
    # impossible after that anyway, and the shared store holds at most ~95 s of accepted codes.
    if not reasons:
        try:
            if not kv.add_once(f"pres:{pass_id.hex()}:{presentation.step}:{door_id}", replay_ttl(presentation.step, at)):
                reasons.append("presentation_replayed")
        except StoreUnavailable:
            reasons.append(REPLAY_STORE_UNAVAILABLE)  # a first use cannot be told from a replay: deny
    return reasons


class Holder:
    """Reference holder (what a phone app does), used by tests, benchmarks and the docs."""

    def __init__(self, private_key: Ed25519PrivateKey | None = None) -> None:
        self._key = private_key or Ed25519PrivateKey.generate()

    @property
    def public_key(self) -> bytes:
        """Raw 32-byte Ed25519 public key: send this when asking for a pass."""
        return self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def present(
        self,
        pass_text: str,
        *,
        at: datetime | None = None,
        door_id: int | None = None,
        challenge: bytes | None = None,
        prefix: str = codec.PREFIX,
    ) -> str:
        pass_token = codec.decode_text(pass_text, prefix)
        step = step_at(at or utcnow())
        signature = self._key.sign(_signed_bytes(pass_token, step, door_id, challenge))
        return codec.encode_text(cbor2.dumps([pass_token, step, door_id, challenge, signature]), prefix)
