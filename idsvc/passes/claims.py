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


def _need(claims: dict[Any, Any], key: int, kind: type | tuple[type, ...], name: str) -> Any:
    value = claims.get(key)
    # bool is an int subclass in Python; a CBOR true is never a valid time or index.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CodecError("claims_invalid", f"claim {name} ({key}) is missing or has the wrong type.")
    return value


def _int_list(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > 256 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise CodecError("claims_invalid", f"scope {name} must be a list of integers.")
    return tuple(value)


def parse_claims(payload: bytes) -> PassClaims:
    """Decode and type-check our claim set; anything unexpected is a refusal, not a guess."""
    claims = cbor_loads(payload, "the claims")
    if not isinstance(claims, dict):
        raise CodecError("claims_invalid", "the claims are not a CBOR map.")
    scope = _need(claims, CLAIM_SCOPE, dict, "scope")
    status = _need(claims, CLAIM_STATUS, dict, "status").get("status_list")
    if not isinstance(status, dict) or not isinstance(status.get("idx"), int) or not isinstance(status.get("uri"), str):
        raise CodecError("claims_invalid", "claim status must be {status_list: {idx, uri}}.")
    try:
        pass_type = PassType(_need(claims, CLAIM_PASS_TYPE, str, "pass type"))
    except ValueError:
        raise CodecError("claims_invalid", "claim pass type has an unknown value.") from None
    holder_key = None
    if CLAIM_CNF in claims:
        cnf = claims[CLAIM_CNF]
        if not isinstance(cnf, dict) or not isinstance(cnf.get(CNF_COSE_KEY), dict):
            raise CodecError("claims_invalid", "claim cnf must hold a COSE_Key.")
        holder_key = cnf[CNF_COSE_KEY]
    sub, pass_id = _need(claims, CLAIM_SUB, bytes, "sub"), _need(claims, CLAIM_CTI, bytes, "cti")
    if len(sub) != 16 or len(pass_id) != 16:
        raise CodecError("claims_invalid", "sub and cti must be 16 bytes.")
    return PassClaims(
        iss=_need(claims, CLAIM_ISS, str, "iss"),
        sub=sub,
        pass_id=pass_id,
        pass_type=pass_type,
        scope=Scope(
            site_id=_need(scope, SCOPE_SITE, int, "scope site"),
            unit_ids=_int_list(scope.get(SCOPE_UNITS, []), "units"),
            door_group_ids=_int_list(scope.get(SCOPE_DOOR_GROUPS, []), "door groups"),
        ),
        iat=_need(claims, CLAIM_IAT, int, "iat"),
        nbf=_need(claims, CLAIM_NBF, int, "nbf"),
        exp=_need(claims, CLAIM_EXP, int, "exp"),
        status_index=status["idx"],
        status_uri=status["uri"],
        holder_key=holder_key,
    )
