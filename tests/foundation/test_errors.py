"""One error shape everywhere, and one list of codes: docs/errors.md == idsvc/core/error_codes.py ==
what the source can raise (both ways)."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from idsvc.core.error_codes import CODES, markdown_table
from idsvc.faces import service as face_service
from tests.conftest import REPO_ROOT
from tests.prerequisites import missing
from tests.world import World

ERROR_CALLS = {"ApiError", "InvalidInput", "NotFound", "Conflict", "Unauthenticated", "Forbidden", "TooManyRequests", "PayloadTooLarge",
               "FaceEngineUnavailable", "ImageInvalid", "ImageFormatUnsupported"}
ANSWER_CALLS = {"error_body", "_answer"}  # (code, message, ...)


def _source_codes() -> tuple[set[str], set[str]]:
    """(literal codes the source raises or answers, codes its f-strings make from literal arguments)."""
    literal: set[str] = set()
    patterns: list[tuple[str, str]] = []  # (f-string as "{}_not_found", the name of the variable)
    arguments: dict[str, set[str]] = {"what": set(), "field": set()}
    for path in (REPO_ROOT / "idsvc").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.Assign) and [getattr(t, "id", None) for t in item.targets] == ["code"] and isinstance(item.value, ast.Constant):
                        literal.add(item.value.value)
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["_HTTP_CODES"]:
                literal.update(v.value for v in node.value.values)  # type: ignore[attr-defined]
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            values = [kw.value for kw in node.keywords if kw.arg == "code"] if name in ERROR_CALLS else node.args[:1] if name in ANSWER_CALLS else []
            for value in values:
                if isinstance(value, ast.Constant):
                    literal.add(value.value)
                elif isinstance(value, ast.JoinedStr):
                    patterns.append((re.sub(r"\{[^}]*\}", "{}", ast.unparse(value)[2:-1]), ast.unparse(value.values[0].value)))  # type: ignore[attr-defined]
            # Literal arguments of the helpers whose f-strings make codes: load(s, Model, id, "door"), not_visible("site", id), _b64(v, "challenge")
            if name in ("load", "not_visible"):
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        arguments["what"].add(arg.value)
            if name == "_b64" and len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
                arguments["field"].add(node.args[1].value)
    made = {pattern.format(argument) for pattern, variable in patterns for argument in arguments.get(variable, set())}
    return literal, made


def test_the_docs_table_is_the_registry() -> None:
    text = (REPO_ROOT / "docs" / "errors.md").read_text()
    table = text.split("python -m idsvc.core.error_codes -->\n", 1)[1].split("<!-- end of the generated table -->", 1)[0]
    assert table == markdown_table(), "docs/errors.md is stale: paste the output of `python -m idsvc.core.error_codes`"


def test_every_code_the_source_can_raise_is_registered_and_every_registered_code_can_be_raised() -> None:
    literal, made = _source_codes()
    face_problems = set(face_service._REJECTIONS)  # enrolment raises code=<the photo's first problem>, one of these
    raisable = literal | made | face_problems
    assert {"door_not_assigned", "image_invalid", "site_not_found", "challenge_invalid"} <= raisable  # the scan sees all three kinds
    assert sorted(raisable - set(CODES)) == [], "raised but not in idsvc/core/error_codes.py (and docs/errors.md)"
    assert sorted(set(CODES) - raisable - {"http_error"}) == [], "listed but never raised: remove them from the registry"


def _shape(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "details"} and isinstance(error["details"], dict), error
    assert error["code"] == code and error["message"]
    assert "<_io." not in error["message"] and "object at 0x" not in error["message"]
    return error  # type: ignore[no-any-return]


def _picture(kind: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(out, kind)
    return out.getvalue()


def test_every_kind_of_refusal_has_the_one_shape(client: TestClient, world: World) -> None:
    device = world.auth("device1")
    _shape(client.get("/v1/me"), 401, "missing_credentials")
    _shape(client.get("/v1/me", headers={"Authorization": "Bearer idsvc_nope"}), 401, "invalid_credentials")
    _shape(client.post("/v1/device/verify", headers=device, json={"door_id": world.ids["door2"], "qr_text": "NH1:X"}), 403, "door_not_assigned")
    _shape(client.get("/v1/units/999999", headers=world.auth("owner1")), 404, "unit_not_found")
    _shape(client.get("/v1/no-such-thing"), 404, "not_found")
    _shape(client.delete("/v1/me", headers=device), 405, "method_not_allowed")
    _shape(client.post("/v1/device/verify", headers=device, content=b"x" * 9_000_000), 413, "payload_too_large")
    _shape(client.post("/v1/device/verify", headers={**device, "Content-Type": "text/plain"}, content=b"hello"), 415, "unsupported_media_type")
    _shape(client.post("/v1/device/verify", headers={**device, "Content-Type": "application/json"}, content=b"{"), 422, "invalid_json")
    invalid = _shape(client.post("/v1/device/verify", headers=device, json={"door_id": "x"}), 422, "invalid_input")
    assert {f["field"] for f in invalid["details"]["fields"]} >= {"door_id", "qr_text"}
    invalid = _shape(client.post("/v1/people", headers=world.auth("district"), json={}), 422, "invalid_input")
    assert invalid["details"]["fields"]


@pytest.mark.parametrize(("data", "status", "code"), [(b"not a picture at all", 415, "image_invalid"), (b"", 422, "image_empty")])
def test_a_bad_picture_is_the_same_error_on_every_endpoint(client: TestClient, world: World, data: bytes, status: int, code: str) -> None:
    device, door = world.auth("device1"), world.ids["door1"]
    qr_frame = client.post("/v1/device/verify", headers=device, data={"door_id": str(door)}, files={"image": ("f.jpg", data, "image/jpeg")})
    one_to_one = {"door_id": str(door), "person_id": str(world.ids["tenant1"])}  # the pass holder given: the frame is read (face_and_pass)
    face_frame = client.post("/v1/device/face-verify", headers=device, data=one_to_one, files={"image": ("f.jpg", data, "image/jpeg")})
    if face_frame.status_code == 503:
        missing("no face model pack installed here; run `idsvc models install`")
    assert _shape(qr_frame, status, code) == _shape(face_frame, status, code)


def test_a_gif_is_an_unsupported_format_everywhere(client: TestClient, world: World) -> None:
    device, door = world.auth("device1"), world.ids["door1"]
    gif = _picture("GIF")
    qr_frame = client.post("/v1/device/verify", headers=device, data={"door_id": str(door)}, files={"image": ("f.gif", gif, "image/gif")})
    assert _shape(qr_frame, 415, "image_format_unsupported")["details"] == {"format": "GIF"}
    one_to_one = {"door_id": str(door), "person_id": str(world.ids["tenant1"])}
    face_frame = client.post("/v1/device/face-verify", headers=device, data=one_to_one, files={"image": ("f.gif", gif, "image/gif")})
    if face_frame.status_code != 503:
        _shape(face_frame, 415, "image_format_unsupported")


def test_the_device_api_error_table_names_registered_codes_with_their_status() -> None:
    text = (REPO_ROOT / "docs" / "device-api.md").read_text()
    rows = re.findall(r"^\| (\d{3}) \| ([^|]+) \|", text, re.MULTILINE)
    assert rows, "device-api.md lost its error table"
    for status, codes in rows:
        for code in re.findall(r"`([a-z_]+)`", codes):
            assert code in CODES, code
            assert CODES[code].status == int(status), f"{code}: device-api.md says {status}, the registry {CODES[code].status}"


def test_unknown_codes_cannot_reach_an_answer_in_tests() -> None:
    """The guard the table relies on: an unlisted code warns, and pyproject makes that warning an error here."""
    from idsvc.core.error_codes import UnregisteredErrorCode, check_registered

    with pytest.raises(UnregisteredErrorCode):
        check_registered("made_up_code", 400)
    with pytest.raises(UnregisteredErrorCode):
        check_registered("door_not_assigned", 404)
    check_registered("door_not_assigned", 403)
    assert Path(REPO_ROOT / "pyproject.toml").read_text().count("error::idsvc.core.error_codes.UnregisteredErrorCode") == 1
