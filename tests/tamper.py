"""Forged passes for tests: a genuine pass's bytes with one signature bit flipped.

The kid and alg stay those of a trusted key, so only the signature check itself can refuse it
(a check that trusts the headers, or a cache keyed on something looser than the exact bytes, would let it in).
"""

from __future__ import annotations

import cbor2

from idsvc.passes import codec


def signature_flipped(text: str, prefix: str = codec.PREFIX) -> str:
    """``text`` with the last bit of its COSE_Sign1 signature flipped (headers and payload untouched)."""
    outer = cbor2.loads(codec.decode_text(text, prefix))
    sign1 = outer.value if isinstance(outer, cbor2.CBORTag) and outer.tag == codec.TAG_CWT else outer
    parts = sign1.value if isinstance(sign1, cbor2.CBORTag) else sign1
    signature = bytearray(parts[3])
    signature[-1] ^= 0x01
    parts[3] = bytes(signature)
    return codec.encode_text(cbor2.dumps(outer), prefix)
