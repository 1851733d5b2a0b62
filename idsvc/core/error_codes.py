"""Every ``error.code`` the HTTP API can answer, with its status and meaning: the one list that
docs/errors.md shows (``python -m idsvc.core.error_codes`` prints its table; a test keeps them equal).

An error raised with a code missing here, or with another status, still answers, but warns
(:class:`UnregisteredErrorCode`); the test suite turns that warning into a failure, so a new code
cannot reach lock makers undocumented. tests/foundation/test_errors.py also finds every code the
source can raise and checks it is here, and that each code here can be raised.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    status: int
    meaning: str


class UnregisteredErrorCode(UserWarning):
    """An answer used a code (or a status for it) that this registry does not list."""


def _not_found(what: str) -> ErrorCode:
    return ErrorCode(404, f"no such {what}, or one the key may not see (the same answer, so nothing can be probed)")


CODES: dict[str, ErrorCode] = {
    # The request itself
    "bad_request": ErrorCode(400, "the request could not be read (for example a broken multipart body)"),
    "invalid_json": ErrorCode(422, "the body is not valid JSON"),
    "invalid_input": ErrorCode(422, "fields missing or of the wrong type or range; `details.fields` lists each with the problem"),
    "method_not_allowed": ErrorCode(405, "the path exists, but not with this HTTP method"),
    "not_acceptable": ErrorCode(406, "no answer in a media type the request accepts"),
    "not_found": ErrorCode(404, "no such path"),
    "payload_too_large": ErrorCode(413, "the body is over the limit of this endpoint (`details.max_bytes`): 64 KiB for JSON, more for pictures and batches"),
    "unsupported_media_type": ErrorCode(415, "the body is not one of the media types this endpoint takes (JSON, or multipart for pictures)"),
    "request_headers_too_large": ErrorCode(431, "the request line and headers are over 32 KiB, or more than 100 headers (answered by the server before any route)"),
    "http_error": ErrorCode(400, "another HTTP-level refusal; the status and message say which"),
    # Who is asking
    "missing_credentials": ErrorCode(401, "no API key: send `Authorization: Bearer <key>` (or `X-API-Key`)"),
    "invalid_credentials": ErrorCode(401, "the key is unknown, expired or revoked"),
    "unauthenticated": ErrorCode(401, "the key could not be used"),
    "device_inactive": ErrorCode(401, "the key's device is suspended or revoked"),
    "rate_limited": ErrorCode(429, "too many failed key attempts from this address; wait a minute"),
    "forbidden": ErrorCode(403, "the key may not do this"),
    "forbidden_role": ErrorCode(403, "the key's role may not do this (for example a tenant key on an admin endpoint)"),
    "forbidden_scope": ErrorCode(403, "the key's role may do this, but not for this site, unit or person"),
    "forbidden_kind": ErrorCode(403, "owners may register tenants, residents, visitors and employees only"),
    "csrf_failed": ErrorCode(403, "a console form without this session's CSRF token (stale page or another site's form): reload and try again"),
    "door_not_assigned": ErrorCode(403, "the door id is not one of this device's doors (also when no such door exists: a device key cannot probe which doors exist)"),
    "not_a_sensor_ingest": ErrorCode(403, "the device reports for no sensor: register sensors with it as their `device_id`"),
    # Rows that are not there (or not visible to the key)
    **{f"{what}_not_found": _not_found(what.replace("_", " ")) for what in (
        "site", "building", "unit", "door", "door_group", "person", "vehicle", "device", "grant", "tenancy", "pass", "api_key",
        "alarm", "sensor", "job",
    )},
    "pass_key_not_found": ErrorCode(404, "no issuer key with this kid (or none that still verifies passes)"),
    # Values that break a rule
    "invalid_time_range": ErrorCode(422, "`until` is not after `since`"),
    "expiry_in_past": ErrorCode(422, "`expires_at` is in the past"),
    "building_mismatch": ErrorCode(422, "`building_id` is not the building of the unit"),
    "duplicate_door": ErrorCode(422, "`door_ids` names a door twice"),
    "door_group_not_in_site": ErrorCode(422, "the door group belongs to another site"),
    "subject_not_in_site": ErrorCode(422, "the person or vehicle belongs to another site"),
    "person_not_in_site": ErrorCode(422, "the person belongs to another site"),
    "door_not_in_site": ErrorCode(422, "the door belongs to another site (placing a door on a site's plan)"),
    "site_required": ErrorCode(422, "a site_admin key needs an existing `site_id`"),
    "person_required": ErrorCode(422, "an owner or tenant key needs an existing `person_id`"),
    "device_required": ErrorCode(422, "a device key needs an existing `device_id`"),
    "kid_invalid": ErrorCode(422, "a kid is 16 lower-case hex digits"),
    "pass_key_alg_invalid": ErrorCode(422, "issuer keys are EdDSA or ES256"),
    "pass_lifetime_invalid": ErrorCode(422, "a pass lives between 1 minute and 31 days"),
    "holder_key_invalid": ErrorCode(422, "`holder_public_key` is not a 32-byte Ed25519 public key"),
    "holder_public_key_invalid": ErrorCode(422, "`holder_public_key` is not base64url"),
    "challenge_invalid": ErrorCode(422, "`challenge` is not base64url"),
    "qr_text_too_long": ErrorCode(422, "`qr_text` is longer than any QR code holds (4,296 characters)"),
    "consent_in_future": ErrorCode(422, "`given_at` is in the future"),
    "building_not_in_site": ErrorCode(422, "the building belongs to another site"),
    "unit_not_in_building": ErrorCode(422, "the unit belongs to another building"),
    "device_not_in_site": ErrorCode(422, "the device belongs to another site"),
    "sensor_kind_mismatch": ErrorCode(422, "HJ 212 stations are of kind `emission_station`, and only they are"),
    "password_required": ErrorCode(422, "an HJ 212 station needs its access password (PW)"),
    "invalid_settings": ErrorCode(422, "a station's `settings` hold an unknown key or a bad `crc` or `limits` value"),
    "reason_required": ErrorCode(422, "clearing an alarm needs a reason"),
    "purpose_required": ErrorCode(422, "a registration export needs its purpose (it is audited)"),
    "invalid_date_range": ErrorCode(422, "`to` is before `from`, or the range is longer than allowed"),
    "registration_field_not_enabled": ErrorCode(422, "the site does not collect this personal field; `details.fields` names them and `details.enabled` what it does collect"),
    "request_names_the_person": ErrorCode(422, "an erasure or export request names the person it is about; describe the requester without their name or phone"),
    # State conflicts
    "conflict": ErrorCode(409, "the change conflicts with data changed meanwhile; reload and retry"),
    "duplicate_code": ErrorCode(409, "the code is taken in this site"),
    "duplicate_name": ErrorCode(409, "the name is taken in this site"),
    "duplicate_label": ErrorCode(409, "the unit label is taken in this building"),
    "duplicate_external_ref": ErrorCode(409, "the `external_ref` is taken in this site"),
    "duplicate_plate": ErrorCode(409, "the plate is registered in this site already"),
    "invalid_transition": ErrorCode(409, "the row's status does not allow this verb (for example reinstating a revoked grant)"),
    "device_revoked": ErrorCode(409, "the device is revoked; register its replacement"),
    "person_revoked": ErrorCode(409, "the person is revoked; reinstate them first"),
    "subject_revoked": ErrorCode(409, "the person or vehicle is revoked; reinstate them first"),
    "person_inactive": ErrorCode(409, "passes are issued to active people only"),
    "pass_not_active": ErrorCode(409, "only an active pass can be renewed"),
    "pass_revoked": ErrorCode(409, "the pass is revoked; issue a new one"),
    "pass_key_withdrawn": ErrorCode(409, "the issuer key is withdrawn"),
    "pass_key_is_root": ErrorCode(409, "the root key signs the trust list and is not withdrawn here"),
    "status_list_full": ErrorCode(409, "the status list has no free index left"),
    "unit_without_doors": ErrorCode(409, "the unit has no door group; the site admin must repair it"),
    "feed_version_ahead": ErrorCode(409, "the bridge's feed version is ahead of this service: it holds another database's feed; fetch a snapshot"),
    "consent_required": ErrorCode(409, "record the person's consent before enrolling their face"),
    "sensor_code_taken": ErrorCode(409, "the sensor code is taken in this site (a station's MN in every site)"),
    "face_filing_required": ErrorCode(409, "the deployment holds faces of as many people as it may without its filing with the cyberspace administration (docs/privacy.md)"),
    "face_only_unsafe": ErrorCode(409, "face_only is refused at this door: the face pack cannot keep the site's targets for as many people as may pass it"),
    "job_running": ErrorCode(409, "the job is running on another node or process; try again when it has finished"),
    # Pictures (QR camera frames and face photos alike)
    "image_missing": ErrorCode(422, "no file field `image` in the multipart body"),
    "image_empty": ErrorCode(422, "the picture is empty"),
    "image_invalid": ErrorCode(415, "the upload is not a picture"),
    "image_format_unsupported": ErrorCode(415, "a picture, but not PNG, JPEG, WebP or BMP (GIF, TIFF, ...)"),
    "image_too_large": ErrorCode(413, "the picture is over the byte limit or claims more pixels than allowed (a decompression bomb)"),
    "image_too_small": ErrorCode(422, "a side of the picture is under 32 pixels"),
    "image_corrupt": ErrorCode(422, "the picture data is truncated or corrupt"),
    "service_degraded": ErrorCode(
        503, "a dependency (`details.dependency`: `database` or `kv`) did not answer within its timeout; nothing was decided or changed: keep the door shut, retry after `Retry-After`"
    ),
    "replay_store_unavailable": ErrorCode(
        503, "a phone (dynamic) code could not be checked for reuse because Redis did not answer; `details` holds the deny decision that was journalled"
    ),
    "image_decoder_busy": ErrorCode(503, "every picture decoder of the node stayed busy for 5 s (a burst of uploads); retry, the door stays shut meanwhile"),
    "image_count": ErrorCode(422, "enrolment takes 1 to 5 photos"),
    "images_disagree": ErrorCode(422, "the enrolment photos do not show the same person"),
    # Face enrolment quality (the photo is a picture, but not of one usable face)
    "no_face": ErrorCode(422, "no face was found in the photo"),
    "multiple_faces": ErrorCode(422, "more than one face is in the photo"),
    "face_too_small": ErrorCode(422, "the face is too small"),
    "low_quality": ErrorCode(422, "the face is blurred, turned away or partly hidden"),
    "spoof_suspected": ErrorCode(422, "the photo looks like a re-captured picture or screen"),
    # The service
    "face_engine_unavailable": ErrorCode(503, "no face model pack is installed on this service (`idsvc models install`); QR passes still work"),
    "sealed_data_unreadable": ErrorCode(500, "stored sealed data does not open with the configured master keys (an operator must check IDSVC_MASTER_KEY)"),
    "internal_error": ErrorCode(500, "the service failed while answering (a bug, logged with its trace): a change may or may not have been made, so read the state back before repeating it; a lock keeps the door shut and retries"),
}


def check_registered(code: str, status: int) -> None:
    """Warn when an answer uses a code that is not listed, or with another status than listed."""
    known = CODES.get(code)
    if known is None:
        warnings.warn(f"error code {code!r} is not in idsvc/core/error_codes.py (docs/errors.md)", UnregisteredErrorCode, stacklevel=2)
    elif known.status != status and code != "http_error":
        warnings.warn(f"error code {code!r} answered with {status}, listed as {known.status}", UnregisteredErrorCode, stacklevel=2)


def markdown_table() -> str:
    """The table of docs/errors.md, in the order above."""
    rows = ["| status | code | meaning |", "|---|---|---|"]
    rows += [f"| {e.status} | `{code}` | {e.meaning} |" for code, e in CODES.items()]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
