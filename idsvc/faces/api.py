"""HTTP views of face consent, enrolment and door verification (photos arrive as multipart files).

Sync views on purpose: the engine's onnxruntime calls block, so FastAPI runs them in its thread pool.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from pydantic import BaseModel, Field

from idsvc.auth.deps import Caller, Ctx
from idsvc.core.times import UtcDateTime
from idsvc.core.validation import ShortText
from idsvc.faces import service

router = APIRouter(prefix="/v1", tags=["faces"])

class ConsentIn(BaseModel):
    purpose: ShortText = Field("door access by face at this site", min_length=3, max_length=200)
    method: ShortText = Field(..., min_length=2, max_length=100, description='How consent was given, e.g. "signed form", "in app".')
    given_at: datetime | None = Field(None, description="When the person consented (default: now). Timezone-aware.")


class ConsentOut(BaseModel):
    id: int
    person_id: int
    site_id: int
    purpose: str
    method: str
    given_at: UtcDateTime
    recorded_by: str


class TemplateOut(BaseModel):
    person_id: int
    site_id: int
    pack: str
    images_used: int
    quality: list[dict[str, Any]]
    updated_at: UtcDateTime


class DecisionOut(BaseModel):
    decision_id: str
    allow: bool
    reasons: list[str]
    warnings: list[str]
    person_id: int | None
    score: float | None
    threshold: float
    quality: dict[str, Any]


def _read_all(files: list[UploadFile]) -> list[bytes]:
    # The body-size middleware already capped the request; these stay in memory and are never written.
    return [f.file.read() for f in files]


@router.post("/people/{person_id}/face/consent", status_code=status.HTTP_201_CREATED)
def record_consent(person_id: int, body: ConsentIn, ctx: Ctx, caller: Caller) -> ConsentOut:
    with ctx.db.session() as s:
        consent = service.record_consent(s, caller, person_id, purpose=body.purpose, method=body.method, given_at=body.given_at)
        return ConsentOut.model_validate(consent, from_attributes=True)


@router.delete("/people/{person_id}/face/consent")
def withdraw_consent(person_id: int, ctx: Ctx, caller: Caller) -> dict[str, int]:
    """Withdrawing consent deletes the face template at once."""
    with ctx.db.session() as s:
        return {"templates_deleted": service.withdraw_consent(s, caller, person_id)}


@router.put("/people/{person_id}/face")
def enrol(person_id: int, ctx: Ctx, caller: Caller, images: Annotated[list[UploadFile], File(description="1-5 photos of the person alone")]) -> TemplateOut:
    """Enrol or re-enrol: the template is replaced; the photos are dropped after embedding."""
    data = _read_all(images)
    with ctx.db.session() as s:
        return TemplateOut.model_validate(service.enrol(ctx, s, caller, person_id, data), from_attributes=True)


@router.get("/people/{person_id}/face")
def face_record(person_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.session() as s:
        return service.face_record(s, caller, person_id)


@router.delete("/people/{person_id}/face")
def delete_template(person_id: int, ctx: Ctx, caller: Caller) -> dict[str, int]:
    with ctx.db.session() as s:
        return {"templates_deleted": service.delete_template(s, caller, person_id)}


@router.post("/device/face-verify")
def face_verify(
    ctx: Ctx,
    caller: Caller,
    door_id: Annotated[int, Form()],
    image: Annotated[UploadFile, File(description="A camera frame (JPEG/PNG)")],
    person_id: Annotated[int | None, Form(description="1:1 mode: the pass holder to check the face against")] = None,
) -> DecisionOut:
    decision = service.verify_at_door(ctx, caller, door_id, image.file.read(), person_id=person_id)
    return DecisionOut.model_validate(decision, from_attributes=True)
