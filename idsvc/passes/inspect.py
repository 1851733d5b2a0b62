"""Layer-by-layer inspection of any QR: ours (``NH1:``) or an EU Digital COVID Certificate (``HC1:``).

An operator sees which layer accepts or refuses a code, and why: picture decode, prefix, base45,
zlib, COSE signature, CBOR claims, expiry, and for our passes their status in this service's
records (revoked, suspended, withdrawn key, unknown). A layer that cannot run because an earlier one
failed, or for lack of a trusted key or of the service's records, is "skipped" with the reason, and
the overall result then says what was not checked instead of "ok". The same decoders and the same
records check (``PassVerifier.standing``) as the verify path are used, so the inspector cannot
disagree with a door about why a code is refused.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_public_key
from cwt.cose_key_interface import COSEKeyInterface
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.core.errors import ApiError
from idsvc.core.kv import MemoryStore
from idsvc.core.times import rfc3339
from idsvc.passes import codec, dynamic, qr
from idsvc.passes.claims import CLAIM_EXP, CLAIM_IAT, CLAIM_NBF, PassClaims, parse_claims
from idsvc.passes.models import IssuerKey, KeyPurpose

LAYERS = ("picture", "prefix", "base45", "zlib", "cose", "cbor", "expiry", "status")
# (claims, kid, validation time) -> the reasons a door would refuse this genuine pass for, [] if none.
Standing = Callable[[PassClaims, bytes, datetime], list[str]]
HCERT_CLAIM = -260


@dataclass
class TrustedSigner:
    """A key the operator trusts, with every kid it may appear under (DCC: hash of the certificate)."""

    public_key: PublicKeyTypes
    kids: frozenset[bytes]

    @classmethod
    def from_bytes(cls, data: bytes) -> TrustedSigner:
        """X.509 certificate (DER, PEM or base64 DER) or a public key (DER/PEM SPKI, or raw 32-byte Ed25519)."""
        loaders = (
            lambda d: x509.load_pem_x509_certificate(d),
            lambda d: x509.load_der_x509_certificate(d),
            lambda d: x509.load_der_x509_certificate(base64.b64decode(d, validate=True)),
        )
        for load in loaders:
            try:
                cert = load(data)
            except Exception:
                continue
            public = cert.public_key()
            der = cert.public_bytes(serialization.Encoding.DER)
            return cls(public, frozenset({hashlib.sha256(der).digest()[:8], codec.kid_of(public)}))  # type: ignore[arg-type]
        for load_key in (serialization.load_pem_public_key, serialization.load_der_public_key):
            try:
                public = load_key(data)
            except Exception:
                continue
            return cls(public, frozenset({codec.kid_of(public)}))  # type: ignore[arg-type]
        if len(data) == 32:
            public = Ed25519PublicKey.from_public_bytes(data)
            return cls(public, frozenset({codec.kid_of(public)}))
        raise ValueError("not an X.509 certificate or a public key (PEM, DER, base64 DER or raw Ed25519)")

    def key_for(self, kid: bytes | None) -> COSEKeyInterface | None:
        if kid is None or kid not in self.kids:
            return None
        return codec.cose_public_key(self.public_key, kid)


@dataclass
class Layer:
    name: str
    status: str = "skipped"  # ok | failed | skipped
    detail: str = "an earlier layer failed"
    code: str | None = None
    reasons: list[str] = field(default_factory=list)  # every code that applied (the status layer may have several)

    def ok(self, detail: str) -> None:
        self.status, self.detail, self.code, self.reasons = "ok", detail, None, []

    def fail(self, code: str, detail: str, reasons: list[str] | None = None) -> None:
        self.status, self.detail, self.code, self.reasons = "failed", detail, code, reasons or [code]

    def skip(self, detail: str) -> None:
        self.status, self.detail = "skipped", detail


@dataclass
class Report:
    prefix: str
    at: datetime
    layers: dict[str, Layer] = field(default_factory=lambda: {name: Layer(name) for name in LAYERS})
    header: dict[str, Any] = field(default_factory=dict)
    claims: Any = None
    text: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing failed (the exit status); :attr:`result` also says what was not checked."""
        return all(layer.status != "failed" for layer in self.layers.values())

    @property
    def result(self) -> str:
        if not self.ok:
            return "failed"
        if self.layers["cose"].status == "skipped":
            return "signature not checked"
        if self.prefix == codec.PREFIX and self.layers["status"].status == "skipped":
            return "status not checked"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "prefix": self.prefix,
            "at": rfc3339(self.at),
            "layers": [{"layer": x.name, "status": x.status, "code": x.code, "reasons": x.reasons, "detail": x.detail} for x in self.layers.values()],
            "header": self.header,
            "claims": self.claims,
            "text": self.text,
        }


def _json_safe(value: Any, depth: int = 0) -> Any:
    if depth > 32:
        return "..."
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, cbor2.CBORTag):
        return {"tag": value.tag, "value": _json_safe(value.value, depth + 1)}
    if isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def normalise_prefix(prefix: str) -> str:
    return prefix if prefix.endswith(":") else prefix + ":"


def detect_prefix(text: str) -> str:
    """EU certificates say so (``HC1:``); anything else is judged as one of ours."""
    return codec.DCC_PREFIX if text.startswith(codec.DCC_PREFIX) else codec.PREFIX


def inspect(
    text: str | None = None,
    *,
    image: bytes | None = None,
    prefix: str | None = None,
    signers: list[TrustedSigner] | None = None,
    standing: Standing | None = None,
    at: datetime,
) -> Report:
    """Run every layer on a QR text or picture; never raises for bad input.

    ``prefix`` None: from the text (``HC1:`` or ours). ``standing``: this service's records check,
    for the status layer of our passes (None: the layer is skipped, "status not checked")."""
    report = Report(prefix=normalise_prefix(prefix) if prefix else codec.PREFIX, at=at)
    layers = report.layers
    if image is not None:
        try:
            found = qr.decode_image(image)
        except ApiError as exc:  # the picture is refused as an upload would be (core/images.py)
            layers["picture"].fail(exc.code, exc.message)
            return report
        if not found:
            layers["picture"].fail("qr_not_found", "no QR code could be read from the picture.")
            return report
        text = found[0]
        layers["picture"].ok(f"read {len(found)} QR code(s); inspecting the first")
    else:
        layers["picture"].skip("the input is text, not a picture")
    assert text is not None
    report.text = text
    prefix = report.prefix = normalise_prefix(prefix) if prefix else detect_prefix(text)
    try:
        body = codec.strip_prefix(text, prefix)
    except codec.CodecError as exc:
        layers["prefix"].fail(exc.code, exc.message)
        return report
    layers["prefix"].ok(f"starts with {prefix}")
    try:
        data = codec.b45decode(body)
    except codec.CodecError as exc:
        layers["base45"].fail(exc.code, exc.message)
        return report
    layers["base45"].ok(f"{len(body)} characters -> {len(data)} bytes")
    if codec.looks_compressed(data):
        try:
            data = codec.inflate(data)
        except codec.CodecError as exc:
            layers["zlib"].fail(exc.code, exc.message)
            return report
        layers["zlib"].ok(f"inflated to {len(data)} bytes")
    elif prefix == codec.DCC_PREFIX:
        layers["zlib"].fail("zlib_missing", "EU certificates are always zlib-compressed; this one is not.")
        return report
    else:
        layers["zlib"].ok("not compressed (ours are compressed only when that makes them smaller)")
    _cose_layers(report, data, signers or [], standing)
    return report


def _cose_layers(report: Report, data: bytes, signers: list[TrustedSigner], standing: Standing | None) -> None:
    layers = report.layers
    try:
        outer = codec.cbor_loads(data, "the payload")
        presentation = dynamic.parse(outer) if report.prefix == codec.PREFIX else None
        message = codec.parse_sign1(presentation.pass_token) if presentation else codec.sign1_from(outer)
    except codec.CodecError as exc:
        layers["cose"].fail(exc.code, exc.message)
        return
    report.header = {
        "alg": codec.ALG_NAMES.get(message.alg, message.alg) if message.alg is not None else None,
        "kid": message.kid.hex() if message.kid is not None else None,
        "cwt_tag": message.cwt_tagged,
        "presentation": "dynamic" if presentation else "static",
    }
    if not signers:
        layers["cose"].skip("no trusted signer given (--cert or --key): signature not checked")
    else:
        key = next((k for k in (s.key_for(message.kid) for s in signers) if k is not None), None)
        if key is None:
            layers["cose"].fail("kid_unknown", f"kid {report.header['kid']} does not belong to any trusted signer.")
        else:
            try:
                codec.verify_signature(message, key)
                layers["cose"].ok(f"{report.header['alg']} signature verifies with kid {report.header['kid']}")
            except codec.CodecError as exc:
                layers["cose"].fail(exc.code, exc.message)
    try:
        claims = _claims_layer(report, message.payload)
    except codec.CodecError as exc:
        layers["cbor"].fail(exc.code, exc.message)
        return
    if presentation is not None:
        _presentation_check(report, presentation, message.payload)
    _expiry_layer(report, claims)
    _status_layer(report, message, standing)


def _status_layer(report: Report, message: codec.Sign1, standing: Standing | None) -> None:
    layer = report.layers["status"]
    if report.prefix != codec.PREFIX:
        layer.skip("not one of this service's passes: no status to look up here")
    elif standing is None:
        layer.skip("status not checked: add --service-keys to look the pass up in this service's records (revoked, suspended, unknown)")
    elif report.layers["cose"].status != "ok" or message.kid is None:
        layer.skip("the signature did not verify: a status means nothing for a code that may be forged")
    else:
        reasons = standing(parse_claims(message.payload), message.kid, report.at)
        if reasons:
            layer.fail(reasons[0], "a door refuses it: " + ", ".join(reasons), reasons)
        else:
            layer.ok("on record, not revoked or suspended, its key still trusted")


def _presentation_check(report: Report, presentation: dynamic.Presentation, payload: bytes) -> None:
    """The phone's part of a dynamic code: signature, step and door, as a door would see them now.

    A private, throw-away replay store: inspecting a code must never use up its one entry.
    """
    claims = parse_claims(payload)
    door = presentation.door_id if presentation.door_id is not None else 0
    reasons = dynamic.check(presentation, claims.holder_key, claims.pass_id, door, report.at, MemoryStore(), presentation.challenge)
    report.header["presentation_step"] = presentation.step
    report.header["presentation_door_id"] = presentation.door_id
    report.header["presentation_check"] = reasons or "ok"


def _claims_layer(report: Report, payload: bytes) -> dict[Any, Any]:
    claims = codec.cbor_loads(payload, "the claims")
    if not isinstance(claims, dict):
        raise codec.CodecError("claims_invalid", "the claims are not a CBOR map.")
    report.claims = _json_safe(claims)
    if report.prefix == codec.DCC_PREFIX:
        hcert = claims.get(HCERT_CLAIM)
        if not isinstance(hcert, dict) or not isinstance(hcert.get(1), dict):
            raise codec.CodecError("claims_invalid", "claim -260 (hcert) must map 1 to the certificate map.")
        report.layers["cbor"].ok("CWT claims with an EU certificate (hcert -260)")
    elif report.prefix == codec.PREFIX:
        parsed = parse_claims(payload)
        report.layers["cbor"].ok(f"pass {parsed.pass_id.hex()} of type {parsed.pass_type.value}")
    else:
        report.layers["cbor"].ok("a CBOR map of claims (unknown prefix: contents not checked)")
    return claims


def _shown(stamp: float) -> str:
    """A claim's time for people; a crafted code may carry one no calendar holds."""
    try:
        return rfc3339(datetime.fromtimestamp(stamp, UTC))
    except (OverflowError, OSError, ValueError):
        return f"{stamp} (out of any calendar's range)"


def _expiry_layer(report: Report, claims: dict[Any, Any]) -> None:
    layer, now = report.layers["expiry"], report.at.timestamp()
    times = {name: claims.get(key) for name, key in (("iat", CLAIM_IAT), ("nbf", CLAIM_NBF), ("exp", CLAIM_EXP))}
    if any(v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)) for v in times.values()):
        layer.fail("claims_invalid", "iat, nbf and exp must be finite numbers.")
        return
    if times["exp"] is None:
        layer.fail("exp_missing", "the claims carry no expiry (exp).")
        return
    start = times["nbf"] if times["nbf"] is not None else times["iat"]
    if start is not None and now < start:
        layer.fail("pass_not_yet_valid", f"validation time is before {'nbf' if times['nbf'] is not None else 'iat'} ({_shown(start)}).")
    elif now >= times["exp"]:
        layer.fail("pass_expired", f"expired at {_shown(times['exp'])}.")
    else:
        layer.ok(f"valid at {rfc3339(report.at)} (exp {_shown(times['exp'])})")


def service_signers(session: Session) -> list[TrustedSigner]:
    """This service's issuer keys as trusted signers (what ``--service-keys`` and the console trust)."""
    rows = session.scalars(select(IssuerKey).where(IssuerKey.purpose == KeyPurpose.issuer)).all()
    return [TrustedSigner(load_der_public_key(r.public_der), frozenset({bytes.fromhex(r.kid)})) for r in rows]  # type: ignore[arg-type]
