"""The plate decision for gate lanes (``POST /v1/device/plate-verify``): a registered vehicle with a grant now.

Lives here until the device API grows a vehicle path of its own (docs/device-api.md covers QR and
faces); it uses the same authorisation core and audits a ``decision`` event like the QR path does.
"""

from __future__ import annotations

from dataclasses import dataclass

from idsvc.audit import service as audit
from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core import ids
from idsvc.core.db import utcnow
from idsvc.registry.access import AccessResult
from idsvc.registry.index import DoorContext, record_decision


@dataclass(frozen=True)
class PlateDecision:
    decision_id: str
    allow: bool
    reasons: list[str]
    grant_id: int | None


def decide(ctx: DoorContext, caller: Principal, door_id: int, plate: str) -> PlateDecision:
    caller.require_role(Role.device)
    caller.require_door(door_id)
    at = utcnow()
    door = ctx.access.door(door_id)
    decision_id = ids.decision_id()

    def event_for(result: AccessResult) -> audit.NewEvent:
        return audit.NewEvent(
            kind="decision",
            actor=caller.actor,
            at=at,
            site_id=door.site_id if door else None,
            unit_id=door.unit_id if door else None,
            door_id=door_id,
            data={"decision_id": decision_id, "method": "plate", "plate": plate, "allow": result.allowed, "reasons": list(result.reasons), "versions": {"grant_id": result.grant_id}},
        )

    result = record_decision(ctx, ctx.access.check(door_id, at, plate=plate), event_for)
    return PlateDecision(decision_id, result.allowed, list(result.reasons), result.grant_id)
