"""Revocation: random status-list indexes, status changes, and the signed status list.

Token Status List style (IETF draft): 2 bits per pass (0 valid, 1 revoked, 2 suspended), at least
131,072 entries so an index says nothing about how many passes exist, zlib-compressed and signed by
the active issuer key. Bridges pull it; online verifiers keep the (small) set of non-valid pass ids
in process instead (see verify.py).
"""

from __future__ import annotations

import secrets
import zlib

import cbor2
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.core.db import utcnow
from idsvc.core.errors import Conflict, NotFound
from idsvc.core.sealing import Sealer
from idsvc.passes import codec, keys, versions
from idsvc.passes.models import IssuerKey, KeyStatus, Pass
from idsvc.registry.models import Status

LIST_SIZE = 131_072
STATUS_URI = "/v1/passes/status-list"
_BITS = {Status.active: 0, Status.revoked: 1, Status.suspended: 2}


def new_index(session: Session) -> int:
    """A random unused index; the unique constraint catches the rare race between two issuers."""
    for _ in range(32):
        index = secrets.randbelow(LIST_SIZE)
        if session.scalar(select(Pass.id).where(Pass.status_index == index)) is None:
            return index
    raise Conflict("The status list is nearly full; enlarge LIST_SIZE.", code="status_list_full")


def set_status(session: Session, row: Pass, status: Status, reason: str | None) -> bool:
    """Change a pass's status; False when it already had it (no version bump, no event)."""
    if row.status is status:
        return False
    row.status, row.status_reason, row.status_changed_at = status, reason, utcnow()
    versions.bump(session, status=True)
    return True


def non_valid(session: Session) -> dict[bytes, Status]:
    """Pass ids that are revoked or suspended: the small set verifiers hold in memory."""
    rows = session.execute(select(Pass.pass_id, Pass.status).where(Pass.status != Status.active))
    return {bytes.fromhex(pass_id): status for pass_id, status in rows}


def status_list(session: Session, sealer: Sealer, kid: str | None = None) -> bytes:
    """The signed, compressed 2-bit status list (COSE_Sign1 by the active issuer key).

    With ``kid``: the list of that issuer key's passes only, signed by that key (one list per issuer;
    indexes are unique across issuers, so the lists never disagree)."""
    rows = select(Pass.status_index, Pass.status).where(Pass.status != Status.active)
    if kid is not None:
        rows = rows.where(Pass.kid == kid)
    bits = bytearray(LIST_SIZE // 4)
    for index, status in session.execute(rows):
        bits[index // 4] |= _BITS[status] << (2 * (index % 4))
    _, status_version = versions.read(session)
    body = {"version": status_version, "iat": int(utcnow().timestamp()), "bits": 2, "lst": zlib.compress(bytes(bits), 9)}
    issuer = keys.active_issuer_key(session, sealer) if kid is None else session.scalar(select(IssuerKey).where(IssuerKey.kid == kid))
    if issuer is None or issuer.status is KeyStatus.withdrawn:
        raise NotFound(f"No issuer key {kid} that still verifies passes.", code="pass_key_not_found")
    return codec.sign(cbor2.dumps(body), keys.signing_key(issuer, sealer))
