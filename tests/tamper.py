"""Forged passes for tests: one signature bit flipped, or a properly signed pass naming another issuer.

The kid and alg stay those of a trusted key, so only the signature check itself can refuse it
(a check that trusts the headers, or a cache keyed on something looser than the exact bytes, would let it in).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cbor2

from idsvc.context import AppContext
from idsvc.passes import codec, keys
from idsvc.passes.claims import parse_claims


def signature_flipped(text: str, prefix: str = codec.PREFIX) -> str:
    """``text`` with the last bit of its COSE_Sign1 signature flipped (headers and payload untouched)."""
    outer = cbor2.loads(codec.decode_text(text, prefix))
    sign1 = outer.value if isinstance(outer, cbor2.CBORTag) and outer.tag == codec.TAG_CWT else outer
    parts = sign1.value if isinstance(sign1, cbor2.CBORTag) else sign1
    signature = bytearray(parts[3])
    signature[-1] ^= 0x01
    parts[3] = bytes(signature)
    return codec.encode_text(cbor2.dumps(outer), prefix)


def resigned(ctx: AppContext, text: str, **changes: Any) -> str:
    """``text``'s claims with ``changes`` (dataclass fields of PassClaims), signed properly by this
    service's active issuer key: a genuine signature over claims the service never issued."""
    claims = parse_claims(codec.parse_sign1(codec.decode_text(text)).payload)
    with ctx.db.session() as s:
        signer = keys.signing_key(keys.active_issuer_key(s, ctx.sealer), ctx.sealer)
    return codec.encode_text(codec.sign(cbor2.dumps(dataclasses.replace(claims, **changes).to_map()), signer))


def from_another_issuer(ctx: AppContext, text: str) -> str:
    return resigned(ctx, text, iss="another-service")


def protected_header(text: str, header: dict[int, Any], prefix: str = codec.PREFIX) -> str:
    """``text`` with its protected header replaced by ``header`` (payload and signature untouched)."""
    outer = cbor2.loads(codec.decode_text(text, prefix))
    sign1 = outer.value if isinstance(outer, cbor2.CBORTag) and outer.tag == codec.TAG_CWT else outer
    parts = sign1.value if isinstance(sign1, cbor2.CBORTag) else sign1
    parts[0] = cbor2.dumps(header)
    parts[1] = {}
    return codec.encode_text(cbor2.dumps(outer), prefix)
