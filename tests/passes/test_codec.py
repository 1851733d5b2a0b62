"""The container layers on their own: base45, zlib, COSE structure, claims, keys, QR pictures."""

from __future__ import annotations

import hashlib
import io
import os
import zlib

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cwt import COSEKey
from PIL import Image

from idsvc.core.errors import ApiError
from idsvc.passes import codec, qr
from idsvc.passes.claims import PassClaims, PassType, Scope, parse_claims


@pytest.mark.parametrize("size", [0, 1, 2, 3, 31, 224, 1000])
def test_base45_matches_the_reference_package(size: int) -> None:
    data = os.urandom(size)
    text = codec.b45encode(data)
    assert text == base45.b45encode(data).decode()
    assert codec.b45decode(text) == data


@pytest.mark.parametrize("text", ["GGW", "A", "abc", "é1", "ZZ", "00\n"])
def test_base45_refuses_bad_text(text: str) -> None:
    with pytest.raises(codec.CodecError) as err:
        codec.b45decode(text)
    assert err.value.code == "base45_invalid"


def test_zlib_only_when_smaller_and_capped() -> None:
    small = os.urandom(200)  # random bytes do not compress
    assert codec.deflate_if_smaller(small) == small
    text_like = b"tenant " * 100
    packed = codec.deflate_if_smaller(text_like)
    assert codec.looks_compressed(packed) and codec.inflate(packed) == text_like
    with pytest.raises(codec.CodecError) as bomb:
        codec.inflate(zlib.compress(b"\0" * 10_000_000))
    assert bomb.value.code == "zlib_too_large"
    with pytest.raises(codec.CodecError) as cut:
        codec.inflate(zlib.compress(text_like)[:-4])
    assert cut.value.code == "zlib_invalid"


def test_hc1_requires_compression() -> None:
    token = cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b"", b""]))
    with pytest.raises(codec.CodecError) as err:
        codec.decode_text("HC1:" + codec.b45encode(token), "HC1:", require_zlib=True)
    assert err.value.code == "zlib_missing"


def test_kid_is_the_first_8_bytes_of_the_spki_hash() -> None:
    public = Ed25519PrivateKey.generate().public_key()
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert codec.kid_of(public) == hashlib.sha256(spki).digest()[:8]


def test_sign_and_verify_round_trip_and_tamper() -> None:
    private = Ed25519PrivateKey.generate()
    kid = codec.kid_of(private.public_key())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    token = codec.sign(b"payload", COSEKey.from_pem(pem, kid=kid))
    message = codec.parse_sign1(token)
    assert (message.alg, message.kid, message.payload) == (codec.ALG_EDDSA, kid, b"payload")
    key = codec.cose_public_key(private.public_key(), kid)
    codec.verify_signature(message, key)
    forged = cbor2.loads(token)
    forged.value[2] = b"payloaX"
    with pytest.raises(codec.CodecError) as err:
        codec.verify_signature(codec.sign1_from(forged), key)
    assert err.value.code == "signature_invalid"


@pytest.mark.parametrize(
    "data",
    [cbor2.dumps([1, 2, 3]), cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b""])), cbor2.dumps(cbor2.CBORTag(18, [{}, {}, b"", b""])), cbor2.dumps(cbor2.CBORTag(99, []))],
)
def test_malformed_cose(data: bytes) -> None:
    with pytest.raises(codec.CodecError) as err:
        codec.parse_sign1(data)
    assert err.value.code == "cose_invalid"


def _claims(changes: dict[int, object] | None = None) -> dict[int, object]:
    claims = PassClaims(b"s" * 16, b"p" * 16, PassType.tenant, Scope(1, (2,), (3,)), 10, 10, 20, 5, "/x").to_map()
    return {**claims, **(changes or {})}


def test_claims_round_trip_and_refusals() -> None:
    parsed = parse_claims(cbor2.dumps(_claims()))
    assert parsed.scope == Scope(1, (2,), (3,)) and parsed.pass_type is PassType.tenant
    for bad in (_claims({4: True}), _claims({2: b"short"}), _claims({-65537: "pirate"}), _claims({-65538: {1: 1, 2: "x"}}), _claims({8: {1: "k"}})):
        with pytest.raises(codec.CodecError) as err:
            parse_claims(cbor2.dumps(bad))
        assert err.value.code == "claims_invalid"


def test_qr_pictures_are_level_q_and_decode() -> None:
    text = "NH1:" + codec.b45encode(os.urandom(224))
    assert qr.symbol_version(text) == 13
    assert qr.decode_image(qr.render_png(text)) == [text]
    assert qr.render_svg(text).startswith(b"<svg")
    assert qr.unit_code_text("abc234") == "NHU1:ABC234"


def test_picture_size_is_checked_before_decoding() -> None:
    out = io.BytesIO()
    Image.new("1", (5000, 5000)).save(out, "PNG")  # small file, 25 megapixels once decoded
    with pytest.raises(ApiError) as err:
        qr.load_gray(out.getvalue())
    assert err.value.code == "image_too_large"


def _sign1(protected: object, unprotected: object = None, payload: object = b"claims", signature: object = b"s" * 64) -> bytes:
    header = cbor2.dumps(protected) if isinstance(protected, dict) else protected
    return cbor2.dumps(cbor2.CBORTag(codec.TAG_SIGN1, [header, {} if unprotected is None else unprotected, payload, signature]))


@pytest.mark.parametrize(("message", "code"), [
    (_sign1({codec.HDR_ALG: codec.ALG_EDDSA}, payload=7), "cose_invalid"),  # payload not a byte string
    (_sign1({codec.HDR_ALG: codec.ALG_EDDSA}, signature="sig"), "cose_invalid"),
    (_sign1(cbor2.dumps([1, 2])), "cose_invalid"),  # protected header not a map
    (_sign1({codec.HDR_ALG: "EdDSA"}), "cose_invalid"),  # alg not an integer
    (_sign1({codec.HDR_ALG: codec.ALG_EDDSA, codec.HDR_KID: "kid-as-text"}), "cose_invalid"),
], ids=["payload_not_bytes", "signature_not_bytes", "protected_not_a_map", "alg_not_int", "kid_not_bytes"])
def test_a_malformed_cose_sign1_is_refused_with_its_code(message: bytes, code: str) -> None:
    with pytest.raises(codec.CodecError) as refused:
        codec.parse_sign1(message)
    assert refused.value.code == code


def test_a_message_without_alg_is_refused_before_any_key_is_tried() -> None:
    key = Ed25519PrivateKey.generate()
    cose_key = codec.cose_public_key(key.public_key(), b"k")
    with pytest.raises(codec.CodecError) as refused:
        codec.verify_signature(codec.parse_sign1(_sign1({codec.HDR_KID: b"k"})), cose_key)
    assert refused.value.code == "alg_missing"


def test_an_overlong_qr_text_is_refused_before_decoding() -> None:
    with pytest.raises(codec.CodecError) as refused:
        codec.decode_text(codec.PREFIX + "0" * codec.MAX_TEXT)
    assert refused.value.code == "qr_text_too_long"
