"""API keys over HTTP, and ``/v1/me`` so a caller can see who the service thinks they are."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from idsvc.auth import service
from idsvc.auth.deps import Caller, Ctx
from idsvc.auth.models import Role
from idsvc.core.times import UtcDateTime
from idsvc.core.validation import RowId, ShortText, Timestamp

router = APIRouter(prefix="/v1", tags=["auth"])


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    site_id: RowId | None = None
    person_id: RowId | None = None
    device_id: RowId | None = None
    label: ShortText = ""
    expires_at: Timestamp | None = None


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    role: Role
    token_prefix: str
    label: str
    site_id: int | None
    person_id: int | None
    device_id: int | None
    created_at: UtcDateTime
    expires_at: UtcDateTime | None
    revoked_at: UtcDateTime | None


class IssuedKeyOut(ApiKeyOut):
    token: str = Field(description="Shown once; only its hash is stored.")


class MeOut(BaseModel):
    role: Role
    actor: str
    site_id: int | None
    person_id: int | None
    device_id: int | None
    door_ids: list[int]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
def create_api_key(body: ApiKeyIn, ctx: Ctx, caller: Caller) -> IssuedKeyOut:
    with ctx.db.session() as s:
        issued = service.issue_key(
            s, caller, body.role, site_id=body.site_id, person_id=body.person_id, device_id=body.device_id, label=body.label, expires_at=body.expires_at
        )
        return IssuedKeyOut(**ApiKeyOut.model_validate(issued.key).model_dump(), token=issued.token)


@router.get("/api-keys")
def list_api_keys(ctx: Ctx, caller: Caller, site_id: RowId | None = None) -> list[ApiKeyOut]:
    with ctx.db.session() as s:
        return [ApiKeyOut.model_validate(k) for k in service.list_keys(s, caller, site_id)]


@router.delete("/api-keys/{key_id}")
def revoke_api_key(key_id: RowId, ctx: Ctx, caller: Caller) -> ApiKeyOut:
    with ctx.db.session() as s:
        revoked = ApiKeyOut.model_validate(service.revoke_key(s, caller, key_id))
    ctx.principals.clear()  # this node at once; other nodes when their one-second cache lapses
    return revoked


@router.get("/me")
def me(caller: Caller) -> MeOut:
    return MeOut(
        role=caller.role, actor=caller.actor, site_id=caller.site_id, person_id=caller.person_id, device_id=caller.device_id,
        door_ids=sorted(caller.door_ids),
    )
