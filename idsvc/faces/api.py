"""HTTP views of face consent, enrolment and door verification (photos arrive as multipart files).

Sync views on purpose: the engine's onnxruntime calls block, so FastAPI runs them in its thread pool.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field

from idsvc.auth.deps import Caller, Ctx
from idsvc.auth.models import Role
from idsvc.core.limits import FRAME_BODY_BYTES, PHOTOS_BODY_BYTES, body_limit
from idsvc.core.times import UtcDateTime
from idsvc.core.validation import LanguageTag, Name, RowId, ShortText, TextVersion, Timestamp
from idsvc.faces import filing, service
from idsvc.faces.models import ConsentPurpose

router = APIRouter(prefix="/v1", tags=["faces"])

class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: ConsentPurpose = Field(ConsentPurpose.face_access, description="face_access (enrolment needs it) or face_offline (templates in the bridges' feed)")
    method: ShortText = Field(..., min_length=2, max_length=100, description='How consent was given, e.g. "signed form", "in app".')
    text_version: TextVersion = Field(..., description="Version of the consent text the person was shown, as printed on it.")
    language: LanguageTag = Field(..., description="Language of that text, a BCP 47 tag such as zh-CN.")
    given_at: Timestamp | None = Field(None, description="When the person consented (default: now). Timezone-aware.")


class ConsentOut(BaseModel):
    id: int
    person_id: int
    site_id: int
    purpose: ConsentPurpose
    text_version: str
    language: str
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
    threshold: float | None = Field(description="the cosine threshold used at this door for its N (null when no face was compared)")
    candidates: int = Field(description="N: how many enrolled people the face was compared with (1 for a pass holder)")
    face_mode: str
    quality: dict[str, Any]


def _read_all(files: list[UploadFile]) -> list[bytes]:
    # The body-size middleware already capped the request; these stay in memory and are never written.
    return [f.file.read() for f in files]


@router.post("/people/{person_id}/face/consent", status_code=status.HTTP_201_CREATED)
def record_consent(person_id: RowId, body: ConsentIn, ctx: Ctx, caller: Caller) -> ConsentOut:
    with ctx.db.session() as s:
        consent = service.record_consent(
            s, caller, person_id, purpose=body.purpose, method=body.method, text_version=body.text_version, language=body.language, given_at=body.given_at
        )
        return ConsentOut.model_validate(consent, from_attributes=True)


@router.delete("/people/{person_id}/face/consent")
def withdraw_consent(
    person_id: RowId, ctx: Ctx, caller: Caller, purpose: Annotated[ConsentPurpose | None, Query(description="Withdraw this purpose only (default: all).")] = None
) -> dict[str, int]:
    """One call, by the person themself or staff: withdrawing face_access consent deletes the face template at once."""
    with ctx.db.session() as s:
        return {"templates_deleted": service.withdraw_consent(s, caller, person_id, purpose)}


@router.put("/people/{person_id}/face")
@body_limit(PHOTOS_BODY_BYTES)
def enrol(person_id: RowId, ctx: Ctx, caller: Caller, images: Annotated[list[UploadFile], File(description="1-5 photos of the person alone")]) -> TemplateOut:
    """Enrol or re-enrol: the template is replaced; the photos are dropped after embedding."""
    data = _read_all(images)
    with ctx.db.session() as s:
        return TemplateOut.model_validate(service.enrol(ctx, s, caller, person_id, data), from_attributes=True)


@router.get("/people/{person_id}/face")
def face_record(person_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.session() as s:
        return service.face_record(s, caller, person_id)


@router.delete("/people/{person_id}/face")
def delete_template(person_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, int]:
    with ctx.db.session() as s:
        return {"templates_deleted": service.delete_template(s, caller, person_id)}


class FilingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: Name = Field(..., description="The filing's number or receipt, as the provincial cyberspace administration gave it.")


@router.get("/faces/filing")
def filing_status(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """People enrolled per site and in the whole deployment, against the filing threshold (docs/privacy.md).
    District admins see every site; a site admin sees the deployment's total and their own site."""
    caller.require_role(Role.district_admin, Role.site_admin)
    with ctx.db.session() as s:
        return filing.status(s, ctx.settings, None if caller.is_district_admin else [caller.site_id or -1])


@router.post("/faces/filing", status_code=status.HTTP_201_CREATED)
def confirm_filing(body: FilingIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Record that the deployment was filed: enrolment past the ceiling is allowed from now on."""
    with ctx.db.session() as s:
        filing.confirm(s, caller, body.reference)
        return filing.status(s, ctx.settings)


@router.post("/device/face-verify")
@body_limit(FRAME_BODY_BYTES)
def face_verify(
    ctx: Ctx,
    caller: Caller,
    door_id: Annotated[RowId, Form()],
    image: Annotated[UploadFile, File(description="A camera frame (JPEG/PNG)")],
    person_id: Annotated[RowId | None, Form(description="1:1 mode: the pass holder to check the face against")] = None,
    code: Annotated[str | None, Form(max_length=40, description="face_and_code doors: the unit's short code (its label) keyed or spoken at the door")] = None,
) -> DecisionOut:
    decision = service.verify_at_door(ctx, caller, door_id, image.file.read(), person_id=person_id, code=code)
    return DecisionOut.model_validate(decision, from_attributes=True)
