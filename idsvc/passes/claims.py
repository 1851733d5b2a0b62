"""The claim set of a pass: what the QR says, and nothing that names a person.

Standard CWT claims (RFC 8392) where one exists: iss 1, sub 2, exp 4, nbf 5, iat 6, cti 7 (the pass
id), cnf 8 (RFC 8747, the holder's key for dynamic presentations) and status 65535 (IETF Token
Status List: ``{"status_list": {"idx": n, "uri": ...}}``). Pass type and scope are private claims in
the range RFC 8392 leaves for private use (below -65536).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from idsvc.passes.codec import CodecError, cbor_loads

CLAIM_ISS = 1
CLAIM_SUB = 2
CLAIM_EXP = 4
CLAIM_NBF = 5
CLAIM_IAT = 6
CLAIM_CTI = 7
CLAIM_CNF = 8
CLAIM_STATUS = 65535
CLAIM_PASS_TYPE = -65537
CLAIM_SCOPE = -65538
SCOPE_SITE, SCOPE_UNITS, SCOPE_DOOR_GROUPS = 1, 2, 3
CNF_COSE_KEY = 1  # cnf: {1: COSE_Key}

ISSUER = "idsvc"


class PassType(str, enum.Enum):
    resident = "resident"
    tenant = "tenant"
    visitor = "visitor"
    employee = "employee"
    vehicle = "vehicle"


@dataclass(frozen=True)
class Scope:
    site_id: int
    unit_ids: tuple[int, ...] = ()
    door_group_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PassClaims:
    sub: bytes  # the person's pseudonym (16 random bytes), never a name or an id number
    pass_id: bytes  # 16 random bytes, the row in `passes`
    pass_type: PassType
    scope: Scope
    iat: int
    nbf: int
    exp: int
    status_index: int
    status_uri: str
    holder_key: dict[int, Any] | None = None  # COSE_Key of the phone, for dynamic presentations
    iss: str = ISSUER

    def to_map(self) -> dict[int, Any]:
        claims: dict[int, Any] = {
            CLAIM_ISS: self.iss,
            CLAIM_SUB: self.sub,
            CLAIM_EXP: self.exp,
            CLAIM_NBF: self.nbf,
            CLAIM_IAT: self.iat,
            CLAIM_CTI: self.pass_id,
            CLAIM_PASS_TYPE: self.pass_type.value,
            CLAIM_SCOPE: {
                SCOPE_SITE: self.scope.site_id,
                SCOPE_UNITS: list(self.scope.unit_ids),
                SCOPE_DOOR_GROUPS: list(self.scope.door_group_ids),
            },
            CLAIM_STATUS: {"status_list": {"idx": self.status_index, "uri": self.status_uri}},
        }
        if self.holder_key is not None:
            claims[CLAIM_CNF] = {CNF_COSE_KEY: self.holder_key}
        return claims


_PASS_TYPES = {t.value: t for t in PassType}
# iss, sub, cti, iat, nbf, exp, scope site, status index, status uri. Exact types: a CBOR true is a
# bool, which Python would otherwise accept as the integer 1.
_REQUIRED = (CLAIM_ISS, CLAIM_SUB, CLAIM_CTI, CLAIM_IAT, CLAIM_NBF, CLAIM_EXP)
_TYPES = (str, bytes, bytes, int, int, int, int, int, str)


def _refuse(detail: str) -> CodecError:
    return CodecError("claims_invalid", f"the claims are not a valid pass: {detail}.")


def _int_list(value: Any) -> tuple[int, ...]:
    if type(value) is not list or len(value) > 256 or not all(type(v) is int for v in value):
        raise _refuse("scope units and door groups must be lists of integers")
    return tuple(value)


def parse_claims(payload: bytes) -> PassClaims:
    """Decode and type-check our claim set; anything unexpected is a refusal, not a guess.

    Written for speed (it runs at every door): one lookup per claim, one type comparison for all.
    """
    claims = cbor_loads(payload, "the claims")
    if type(claims) is not dict:
        raise _refuse("not a CBOR map")
    scope, status = claims.get(CLAIM_SCOPE), claims.get(CLAIM_STATUS)
    if type(scope) is not dict or type(status) is not dict or type(status.get("status_list")) is not dict:
        raise _refuse("scope and status must be maps")
    status_list = status["status_list"]
    values = (*(claims.get(key) for key in _REQUIRED), scope.get(SCOPE_SITE), status_list.get("idx"), status_list.get("uri"))
    if tuple(map(type, values)) != _TYPES:
        raise _refuse("a required claim is missing or has the wrong type")
    iss, sub, pass_id, iat, nbf, exp, site_id, status_index, status_uri = values
    if len(sub) != 16 or len(pass_id) != 16:
        raise _refuse("sub and cti must be 16 bytes")
    pass_type = _PASS_TYPES.get(claims.get(CLAIM_PASS_TYPE))  # type: ignore[arg-type]
    if pass_type is None:
        raise _refuse("unknown pass type")
    holder_key = None
    if CLAIM_CNF in claims:
        cnf = claims[CLAIM_CNF]
        if type(cnf) is not dict or type(cnf.get(CNF_COSE_KEY)) is not dict:
            raise _refuse("cnf must hold a COSE_Key")
        holder_key = cnf[CNF_COSE_KEY]
    return PassClaims(
        iss=iss,
        sub=sub,
        pass_id=pass_id,
        pass_type=pass_type,
        scope=Scope(site_id, _int_list(scope.get(SCOPE_UNITS, [])), _int_list(scope.get(SCOPE_DOOR_GROUPS, []))),
        iat=iat,
        nbf=nbf,
        exp=exp,
        status_index=status_index,
        status_uri=status_uri,
        holder_key=holder_key,
    )
