"""Defect 1 of issue 11: one request with a huge body of unknown keys must cost little and answer little."""

from __future__ import annotations

import io
import time

import orjson
from fastapi.testclient import TestClient
from PIL import Image

from idsvc.core.errors import MAX_LISTED_PROBLEMS
from tests.world import World


def _unknown_keys(n: int) -> bytes:
    return orjson.dumps({f"k{i}": 0 for i in range(n)})


def test_a_json_route_refuses_a_body_over_its_small_cap_before_reading_it(client: TestClient, world: World) -> None:
    body = _unknown_keys(500_000)  # ~6 MB: under the service-wide cap, far over what /v1/people needs
    started = time.perf_counter()
    answer = client.post("/v1/people", headers={**world.auth("admin_a"), "Content-Type": "application/json"}, content=body)
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large" and error["details"] == {"max_bytes": 64 * 1024}
    assert len(answer.content) < 1000 and time.perf_counter() - started < 2


def test_a_streamed_json_body_is_cut_at_the_small_cap_too(client: TestClient, world: World) -> None:
    body = _unknown_keys(20_000)

    def chunks():  # no Content-Length
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    answer = client.post("/v1/device/events", headers={**world.auth("device1"), "Content-Type": "application/json"}, content=chunks())
    # The batch route takes more than the JSON default, but not this: 20,000 keys are ~250 KB, over the default, under the batch cap.
    assert answer.status_code == 422 and answer.json()["error"]["details"]["count"] >= 20_000
    answer = client.post("/v1/people", headers={**world.auth("admin_a"), "Content-Type": "application/json"}, content=chunks())
    assert answer.status_code == 413


def test_validation_problems_are_capped_in_the_answer(client: TestClient, world: World) -> None:
    body = _unknown_keys(3000)  # under the cap: every key is a problem
    answer = client.post("/v1/people", headers={**world.auth("admin_a"), "Content-Type": "application/json"}, content=body)
    assert answer.status_code == 422
    details = answer.json()["error"]["details"]
    assert len(details["fields"]) == MAX_LISTED_PROBLEMS and details["count"] >= 3000
    assert len(answer.content) < 8000


def test_picture_routes_still_take_a_camera_frame(client: TestClient, world: World) -> None:
    frame = io.BytesIO()
    Image.merge("RGB", [Image.effect_noise((1000, 800), 64)] * 3).save(frame, "PNG")  # noise: over 1 MB, under the frame cap
    assert len(frame.getvalue()) > 1024 * 1024
    answer = client.post("/v1/device/verify", headers=world.auth("device1"), data={"door_id": str(world.ids["door1"])}, files={"image": ("f.png", frame.getvalue(), "image/png")})
    assert answer.status_code == 200 and answer.json()["decision"] == "deny", answer.text  # read and decided: no QR in noise
    over = b"x" * (5 * 1024 * 1024)
    answer = client.post("/v1/device/verify", headers=world.auth("device1"), data={"door_id": str(world.ids["door1"])}, files={"image": ("f.png", over, "image/png")})
    assert answer.status_code == 413
