"""HTTP API of passes: issue, renew, list and revoke per person; QR pictures; the device verify call.

People-facing endpoints use the registry's visibility rules (a pass is visible to whoever may see
its holder). ``POST /v1/device/verify`` is for locks and readers (role ``device``) and is documented
for lock makers in docs/device-api.md.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from idsvc.auth.deps import Caller, Ctx
from idsvc.auth.models import Role
from idsvc.core.errors import ApiError, InvalidInput, PayloadTooLarge, validation_details
from idsvc.core.limits import FRAME_BODY_BYTES, body_limit
from idsvc.core.validation import Reason, RowId
from idsvc.passes import codec, dynamic, issuing, keys, qr
from idsvc.passes import status as pass_status
from idsvc.passes.claims import PassType
from idsvc.passes.verify import PassVerifier
from idsvc.registry import units
from idsvc.registry.models import Status

router = APIRouter(prefix="/v1", tags=["passes"])
MAX_UPLOAD = 4 * 1024 * 1024  # a camera frame; anything larger is not a frame
CBOR = "application/cbor"
_PICTURES = {"png": ("image/png", qr.render_png), "svg": ("image/svg+xml", qr.render_svg)}


def get_verifier(request: Request) -> PassVerifier:
    """The application's verifier, with its in-process caches (made on first use)."""
    state = request.app.state
    verifier = getattr(state, "pass_verifier", None)
    if verifier is None:
        verifier = state.pass_verifier = PassVerifier(state.ctx)
    return verifier  # type: ignore[no-any-return]


def _b64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field} must be base64url.", code=f"{field}_invalid") from None


class IssueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pass_type: PassType | None = None
    lifetime_days: float = Field(7, gt=0, le=31)
    holder_public_key: str | None = Field(None, max_length=64, description="base64url raw Ed25519 public key of the phone (dynamic QR)")


class RenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lifetime_days: float = Field(7, gt=0, le=31)


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["revoked", "suspended", "active"]
    reason: Reason


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    door_id: RowId = Field(description="the door the reader guards (one of the device's doors)")
    qr_text: str = Field(description=f"the QR content exactly as scanned, at most {codec.MAX_TEXT} characters")
    challenge: str | None = Field(None, max_length=100, description="base64url reader challenge shown to the phone, if any")


def _issued(issued: issuing.IssuedPass) -> dict[str, Any]:
    return {**issuing.pass_to_dict(issued.row), "qr_text": issued.text}


@router.post("/people/{person_id}/passes", status_code=status.HTTP_201_CREATED)
def issue_pass(person_id: RowId, body: IssueIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    holder = _b64(body.holder_public_key, "holder_public_key") if body.holder_public_key else None
    with ctx.db.session() as s:
        issued = issuing.issue(s, ctx.sealer, caller, person_id, pass_type=body.pass_type, lifetime=timedelta(days=body.lifetime_days), holder_public_key=holder)
        return _issued(issued)


@router.get("/people/{person_id}/passes")
def list_passes(
    person_id: RowId,
    ctx: Ctx,
    caller: Caller,
    include_expired: bool = False,
    status_filter: Annotated[Status | None, Query(alias="status")] = None,
) -> list[dict[str, Any]]:
    """A person's passes; ``?status=revoked&include_expired=true`` lists their revocations."""
    with ctx.db.session() as s:
        rows = issuing.list_for_person(s, caller, person_id, include_expired)
        return [issuing.pass_to_dict(r) for r in rows if status_filter is None or r.status is status_filter]


@router.get("/trust-anchor", tags=["passes"])
def trust_anchor(ctx: Ctx) -> dict[str, str]:
    """The root public key bridges pin (no API key needed: it is public). Pin it only after comparing
    its `sha256` with the one `idsvc pass root-key` prints on the server (docs/device-api.md)."""
    with ctx.db.session() as s:
        return keys.trust_anchor(s, ctx.sealer)


@router.get("/passes/trust-list", response_class=Response, responses={200: {"content": {CBOR: {}}}})
def trust_list(ctx: Ctx, caller: Caller) -> Response:
    """COSE_Sign1 by the root key over every issuer key and its state (for bridges and auditors)."""
    with ctx.db.session() as s:
        return Response(keys.trust_list(s, ctx.sealer), media_type=CBOR)


@router.get(pass_status.STATUS_URI.removeprefix("/v1"), response_class=Response, responses={200: {"content": {CBOR: {}}}})
def status_list(ctx: Ctx, caller: Caller) -> Response:
    """The signed 2-bit status list bridges pull (at least every 60 s)."""
    with ctx.db.session() as s:
        return Response(pass_status.status_list(s, ctx.sealer), media_type=CBOR)


@router.get("/passes/{pass_id}")
def get_pass(pass_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.session() as s:
        return issuing.pass_to_dict(issuing.get_pass(s, caller, pass_id))


@router.post("/passes/{pass_id}/renew", status_code=status.HTTP_201_CREATED)
def renew_pass(pass_id: RowId, body: RenewIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.session() as s:
        return _issued(issuing.renew(s, ctx.sealer, caller, pass_id, timedelta(days=body.lifetime_days)))


@router.post("/passes/{pass_id}/status")
def change_pass_status(pass_id: RowId, body: StatusIn, request: Request, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Revoke, suspend or reinstate. Takes effect on this node at once, on others within a second."""
    with ctx.db.session() as s:
        row = issuing.change_status(s, caller, pass_id, Status(body.status), body.reason)
        result = issuing.pass_to_dict(row)
    get_verifier(request).invalidate()
    return result


@router.get("/passes/{pass_id}/qr.{kind}", response_class=Response, responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
def pass_qr(pass_id: RowId, kind: Literal["png", "svg"], ctx: Ctx, caller: Caller) -> Response:
    media, render = _PICTURES[kind]
    with ctx.db.session() as s:
        text = issuing.qr_text(s, ctx.sealer, issuing.get_pass(s, caller, pass_id))
    return Response(render(text), media_type=media, headers={"Cache-Control": "no-store"})


@router.get("/units/{unit_id}/qr.{kind}", response_class=Response, responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
def unit_qr(unit_id: RowId, kind: Literal["png", "svg"], ctx: Ctx, caller: Caller) -> Response:
    """"One house, one code": the unit's stable code as a QR to print at its door."""
    media, render = _PICTURES[kind]
    with ctx.db.session() as s:
        unit = units.get_unit(s, caller, unit_id)
        return Response(render(qr.unit_code_text(unit.code)), media_type=media)


# --- the device call ----------------------------------------------------------------------------


async def _read_verify_request(request: Request) -> tuple[int, str | None, bytes | None, bytes | None]:
    """(door_id, qr_text, image, challenge) from a JSON body or a multipart upload."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = VerifyIn.model_validate(orjson.loads(await request.body()))
        except orjson.JSONDecodeError:
            raise InvalidInput("The body is not valid JSON.", code="invalid_json") from None
        except ValidationError as exc:
            raise InvalidInput("Send {door_id, qr_text}.", code="invalid_input", details=validation_details(list(exc.errors()))) from None
        if len(body.qr_text) > codec.MAX_TEXT:
            raise InvalidInput(f"qr_text is longer than any QR code ({codec.MAX_TEXT} characters).", code="qr_text_too_long")
        challenge = _b64(body.challenge, "challenge") if body.challenge else None
        return body.door_id, body.qr_text, None, challenge
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=4, max_part_size=MAX_UPLOAD) as form:
            door_field, image = form.get("door_id"), form.get("image")
            if not isinstance(door_field, str) or not door_field.isdigit() or not 1 <= int(door_field) <= 2**31 - 1:
                raise InvalidInput("Send door_id as a form field.", code="invalid_input")
            if image is None or isinstance(image, str):
                raise InvalidInput("Send the camera frame as the file field 'image'.", code="image_missing")
            data = await image.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise PayloadTooLarge(f"The image is over {MAX_UPLOAD} bytes.", code="image_too_large")
        return int(door_field), None, data, None
    raise ApiError("Send application/json or multipart/form-data.", code="unsupported_media_type", status=415)


# The body is read by hand (JSON or multipart, see _read_verify_request), so its schema is declared here.
_VERIFY_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": VerifyIn.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["door_id", "image"],
                "properties": {
                    "door_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1, "description": "the door the camera guards"},
                    "image": {"type": "string", "format": "binary", "description": f"a camera frame: PNG, JPEG, WebP or BMP, at most {MAX_UPLOAD} bytes"},
                },
            }
        },
    },
}


@router.post(
    "/device/verify",
    responses={200: {"description": "allow or deny, with reasons"}},
    openapi_extra={"requestBody": _VERIFY_BODY},
)
@body_limit(FRAME_BODY_BYTES)
async def device_verify(request: Request, caller: Caller) -> dict[str, Any]:
    """A lock or reader asks: may the holder of this QR (text or camera frame) open this door now?"""
    caller.require_role(Role.device)
    door_id, text, image, challenge = await _read_verify_request(request)
    caller.require_door(door_id)
    verifier = get_verifier(request)
    if image is not None:
        found = await run_in_threadpool(qr.decode_image, image)  # a bad picture is a 4xx of core/images.py
        text = found[0] if found else None  # None: the frame holds no readable QR (a deny, not an error)
    decision = await run_in_threadpool(lambda: verifier.decide(door_id, text, actor=caller.actor, challenge=challenge))
    if dynamic.REPLAY_STORE_UNAVAILABLE in decision.reasons:
        # Journalled as a deny; answered as an outage so the lock maker's code can tell it from a bad code.
        raise ApiError(
            "The replay store (Redis) did not answer, so a phone code cannot be checked for reuse. Keep the door shut; printed passes still work.",
            code="replay_store_unavailable",
            status=503,
            details=decision.to_dict(),
        )
    return decision.to_dict()
