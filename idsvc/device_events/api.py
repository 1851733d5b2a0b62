"""Bridge calls: ``GET /v1/device/self`` (who the key is), ``POST /v1/device/events`` (journal upload,
stored exactly once) and ``POST /v1/device/plate-verify``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from idsvc.auth.deps import Caller, Ctx
from idsvc.auth.models import Role
from idsvc.core.limits import BATCH_BODY_BYTES, body_limit
from idsvc.core.validation import JsonObject, Plate, RowId, Timestamp
from idsvc.device_events import plates, service

router = APIRouter(prefix="/v1/device", tags=["device"])

MAX_BATCH = 500


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="Stable id the device gave the event; re-sending it is a no-op.")]
    kind: Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[a-z][a-z0-9_]*$", description="access_granted, door_forced, command_timeout, ...")]
    at: Timestamp
    door_id: RowId | None = None
    person_id: RowId | None = None
    data: JsonObject = Field(default_factory=dict, description="Any JSON object (finite numbers, valid Unicode, at most 32 levels deep).")


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH)]


class EventsOut(BaseModel):
    stored: list[str]
    duplicates: list[str]
    rejected: dict[str, str]


class DeviceSelf(BaseModel):
    device_id: int
    site_id: int | None
    door_ids: list[int]


@router.get("/self")
def device_self(caller: Caller) -> DeviceSelf:
    """The device this key belongs to and the doors it is bound to: what a bridge checks at commissioning."""
    caller.require_role(Role.device)
    assert caller.device_id is not None
    return DeviceSelf(device_id=caller.device_id, site_id=caller.site_id, door_ids=sorted(caller.door_ids))


@router.post("/events")
@body_limit(BATCH_BODY_BYTES)
def upload_events(body: EventsIn, ctx: Ctx, caller: Caller) -> EventsOut:
    """Store each event once and append it to the audit trail as ``device.<kind>``.

    Every event id of the batch is in exactly one of the answer's lists; a client may forget the
    stored and duplicate ones, and should keep (and report) rejected ones rather than resend them.
    """
    incoming = [service.Incoming(e.event_id, e.kind, e.at, e.door_id, e.person_id, e.data) for e in body.events]
    result = service.ingest(ctx, caller, incoming)
    return EventsOut(stored=result.stored, duplicates=result.duplicates, rejected=result.rejected)


class PlateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    door_id: RowId
    plate: Plate


class PlateOut(BaseModel):
    decision_id: str
    allow: bool
    reasons: list[str]
    grant_id: int | None


@router.post("/plate-verify")
def plate_verify(body: PlateIn, ctx: Ctx, caller: Caller) -> PlateOut:
    """May the vehicle with this plate pass this gate lane now? Audited as a ``decision`` (method plate)."""
    decision = plates.decide(ctx, caller, body.door_id, body.plate)
    return PlateOut(decision_id=decision.decision_id, allow=decision.allow, reasons=decision.reasons, grant_id=decision.grant_id)
