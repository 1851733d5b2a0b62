"""The container: PREFIX + base45( zlib-if-smaller( COSE_Sign1( claims ) ) ).

Everything here is about bytes and structure, nothing about who may enter. Each failure raises
:class:`CodecError` with a stable reason code, because a lock shows that code to a person and the
inspector prints it layer by layer. Inputs come from cameras and strangers, so every step has a size
cap: the QR text (a QR holds at most 4,296 alphanumeric characters), the inflated payload (a zlib
bomb stops at ``MAX_INFLATED``) and the CBOR nesting (cbor2 refuses more than 400 levels).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import cbor2
import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cwt import COSE, COSEKey, VerifyError
from cwt.algs.okp import OKPKey
from cwt.cose_key_interface import COSEKeyInterface
from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError

PREFIX = "NH1:"  # our own, versioned: NH2 will be a new decoder, not a new meaning for NH1
DCC_PREFIX = "HC1:"
MAX_TEXT = 4296
MAX_INFLATED = 16 * 1024

ALG_EDDSA = -8
ALG_ES256 = -7
ALG_PS256 = -37
# What our own passes may use; PS256 is only for reading outside issuers (EU certificates).
PASS_ALGS = frozenset({ALG_EDDSA, ALG_ES256})
ALG_NAMES = {ALG_EDDSA: "EdDSA", ALG_ES256: "ES256", ALG_PS256: "PS256"}

TAG_CWT = 61
TAG_SIGN1 = 18
HDR_ALG = 1
HDR_KID = 4


class CodecError(Exception):
    """A layer refused the input; ``code`` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- prefix -----------------------------------------------------------------------------------


def strip_prefix(text: str, prefix: str) -> str:
    if len(text) > MAX_TEXT:
        raise CodecError("qr_text_too_long", f"QR text is {len(text)} characters; a QR holds at most {MAX_TEXT}.")
    if not text.startswith(prefix):
        raise CodecError("prefix_mismatch", f"QR text does not start with {prefix!r} (starts with {text[:4]!r}).")
    return text[len(prefix) :]


# --- base45 (RFC 9285) ------------------------------------------------------------------------
# Decoding is on every door's hot path: bytes.translate maps characters to values in C and numpy
# combines the triples (~8 µs for a pass, against ~35 µs for the pure-Python `base45` package).

_B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_TABLE = bytes(_B45_ALPHABET.find(chr(c)) & 0xFF if chr(c) in _B45_ALPHABET else 0xFF for c in range(256))
_B45_WEIGHTS = np.array([1, 45, 45 * 45], dtype=np.uint32)


def b45decode(text: str) -> bytes:
    try:
        values = text.encode("ascii").translate(_B45_TABLE)
    except UnicodeEncodeError:
        raise CodecError("base45_invalid", "base45 text contains a non-ASCII character.") from None
    if b"\xff" in values:
        raise CodecError("base45_invalid", "base45 text contains a character outside the base45 alphabet.")
    full = len(values) - len(values) % 3
    if len(values) - full == 1:
        raise CodecError("base45_invalid", "base45 text length leaves a single dangling character.")
    words = np.frombuffer(values, dtype=np.uint8, count=full).reshape(-1, 3) @ _B45_WEIGHTS
    if words.size and int(words.max()) > 0xFFFF:
        raise CodecError("base45_invalid", "base45 triple encodes a value over 65535.")
    out = words.astype(">u2").tobytes()
    if full != len(values):
        last = values[full] + 45 * values[full + 1]
        if last > 0xFF:
            raise CodecError("base45_invalid", "base45 final pair encodes a value over 255.")
        out += bytes((last,))
    return out


def b45encode(data: bytes) -> str:
    out = []
    for i in range(0, len(data) - 1, 2):
        value = data[i] * 256 + data[i + 1]
        value, c = divmod(value, 45)
        e, d = divmod(value, 45)
        out += (_B45_ALPHABET[c], _B45_ALPHABET[d], _B45_ALPHABET[e])
    if len(data) % 2:
        e, c = divmod(data[-1], 45)
        out += (_B45_ALPHABET[c], _B45_ALPHABET[e])
    return "".join(out)


# --- zlib -------------------------------------------------------------------------------------


def looks_compressed(data: bytes) -> bool:
    """A zlib stream starts 0x78; a COSE message starts with a CBOR tag or array (0xd2, 0xd8, 0x84...)."""
    return len(data) >= 2 and data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0


def inflate(data: bytes, limit: int = MAX_INFLATED) -> bytes:
    stream = zlib.decompressobj()
    try:
        out = stream.decompress(data, limit)
    except zlib.error as exc:
        raise CodecError("zlib_invalid", f"zlib data is broken: {exc}.") from None
    if stream.unconsumed_tail:
        raise CodecError("zlib_too_large", f"zlib data inflates to more than {limit} bytes.")
    if not stream.eof:
        raise CodecError("zlib_invalid", "zlib data ends before the end of the stream.")
    return out


def deflate_if_smaller(data: bytes) -> bytes:
    packed = zlib.compress(data, 9)
    return packed if len(packed) < len(data) else data


# --- COSE_Sign1 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sign1:
    """A parsed, not yet verified COSE_Sign1 message."""

    message: cbor2.CBORTag  # tag 18, handed to python-cwt for the signature check
    protected: dict[Any, Any]
    unprotected: dict[Any, Any]
    payload: bytes
    alg: int | None
    kid: bytes | None
    cwt_tagged: bool


def cbor_loads(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data)
    except RecursionError:
        raise CodecError("cbor_invalid", f"{what} is nested too deeply.") from None
    except Exception as exc:  # cbor2 raises several types (CBORDecodeError, ValueError, MemoryError...)
        raise CodecError("cbor_invalid", f"{what} is not valid CBOR: {exc}.") from None


def parse_sign1(data: bytes) -> Sign1:
    return sign1_from(cbor_loads(data, "the signed message"))


def sign1_from(obj: Any) -> Sign1:
    """A COSE_Sign1 from an already decoded CBOR value (optionally wrapped in the CWT tag 61)."""
    cwt_tagged = isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_CWT
    if cwt_tagged:
        obj = obj.value
    if isinstance(obj, list):  # untagged COSE_Sign1 is allowed by RFC 9052 when the context says so
        obj = cbor2.CBORTag(TAG_SIGN1, obj)
    if not isinstance(obj, cbor2.CBORTag) or obj.tag != TAG_SIGN1:
        raise CodecError("cose_invalid", "the message is not a COSE_Sign1 (CBOR tag 18).")
    parts = obj.value
    if not isinstance(parts, list) or len(parts) != 4:
        raise CodecError("cose_invalid", "COSE_Sign1 must be an array of 4 items.")
    protected_bytes, unprotected, payload, signature = parts
    if not isinstance(protected_bytes, bytes) or not isinstance(unprotected, dict):
        raise CodecError("cose_invalid", "COSE_Sign1 headers have the wrong types.")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise CodecError("cose_invalid", "COSE_Sign1 payload or signature is not a byte string.")
    protected = cbor_loads(protected_bytes, "the protected header") if protected_bytes else {}
    if not isinstance(protected, dict):
        raise CodecError("cose_invalid", "the protected header is not a map.")
    alg = protected.get(HDR_ALG, unprotected.get(HDR_ALG))
    # The kid is looked up in the protected header first; an unprotected kid is only a hint (EU rule).
    kid = protected.get(HDR_KID, unprotected.get(HDR_KID))
    if alg is not None and not isinstance(alg, int):
        raise CodecError("cose_invalid", "the alg header is not an integer.")
    if kid is not None and not isinstance(kid, bytes):
        raise CodecError("cose_invalid", "the kid header is not a byte string.")
    return Sign1(obj, protected, unprotected, payload, alg, kid, cwt_tagged)


_cose = COSE.new()


def verify_signature(message: Sign1, key: COSEKeyInterface) -> None:
    """Check the signature with python-cwt; the key's own algorithm decides, never the header."""
    if message.alg is None:
        raise CodecError("alg_missing", "the message names no algorithm.")
    if message.alg != key.alg:
        raise CodecError("alg_mismatch", f"the message says alg {message.alg}, the trusted key is for {key.alg}.")
    try:
        _cose.decode_with_headers(message.message, key)
    except Exception:
        raise CodecError("signature_invalid", "the signature does not verify with the trusted key.") from None


def sign(payload: bytes, key: COSEKeyInterface) -> bytes:
    """COSE_Sign1 with alg and kid in the protected header."""
    token = _cose.encode_and_sign(payload, key, protected={HDR_ALG: key.alg, HDR_KID: key.kid})
    assert isinstance(token, bytes)
    return token


# --- keys -------------------------------------------------------------------------------------


def spki_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def kid_of(public_key: PublicKeyTypes) -> bytes:
    """First 8 bytes of SHA-256 over the DER SubjectPublicKeyInfo (design/passes.md)."""
    return hashlib.sha256(spki_der(public_key)).digest()[:8]


class SodiumEd25519Key(OKPKey):
    """python-cwt's Ed25519 key, verifying with libsodium (PyNaCl).

    Measured here, libsodium verifies in about half to two thirds of OpenSSL's time, and the
    signature check is most of a door decision. python-cwt still parses and checks the COSE
    structure and builds the Sig_structure; only the final curve arithmetic is swapped.
    """

    def __init__(self, raw_public_key: bytes, kid: bytes = b"") -> None:
        super().__init__({1: 1, 3: ALG_EDDSA, -1: 6, -2: raw_public_key, **({2: kid} if kid else {})})
        self._raw = raw_public_key

    def verify(self, msg: bytes, sig: bytes) -> None:
        if len(sig) != 64:
            raise VerifyError("Failed to verify.")
        try:
            crypto_sign_open(sig + msg, self._raw)
        except (CryptoError, ValueError) as err:  # bad signature, or a key that is not a curve point
            raise VerifyError("Failed to verify.") from err


def cose_public_key(public_key: PublicKeyTypes, kid: bytes) -> COSEKeyInterface:
    """A verifying key for python-cwt; the algorithm follows from the key type, never from a header."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return SodiumEd25519Key(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw), kid)
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        alg = "ES256"
    elif isinstance(public_key, rsa.RSAPublicKey):
        alg = "PS256"  # only to read outside issuers such as EU certificates
    else:
        raise CodecError("key_unsupported", "only Ed25519, P-256 and RSA (PS256) keys are supported.")
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return COSEKey.from_pem(pem, alg=alg, kid=kid)


# --- the whole text ---------------------------------------------------------------------------


def encode_text(token: bytes, prefix: str = PREFIX) -> str:
    return prefix + b45encode(deflate_if_smaller(token))


def decode_text(text: str, prefix: str = PREFIX, *, require_zlib: bool = False) -> bytes:
    """Prefix, base45 and zlib layers: QR text -> the CBOR bytes of the signed message."""
    data = b45decode(strip_prefix(text, prefix))
    if looks_compressed(data):
        return inflate(data)
    if require_zlib:
        raise CodecError("zlib_missing", "the payload is not zlib-compressed, which this prefix requires.")
    return data
