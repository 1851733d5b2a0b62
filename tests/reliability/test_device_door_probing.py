"""A device key cannot tell a door id that does not exist from another device's door: every device
route that takes a door id answers both the same way (status, code and body, the id aside), so a lock
key cannot enumerate the doors of the deployment. The sync feed does the same for site ids."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.world import World

MISSING = 999_999
FRAME = b"\xff\xd8\xff\xe0 not a real frame"  # the door is checked before any picture is read

Ask = Callable[[TestClient, dict[str, str], int], Any]

ROUTES: dict[str, Ask] = {
    "verify (JSON)": lambda c, h, door: c.post("/v1/device/verify", headers=h, json={"door_id": door, "qr_text": "NH1:X"}),
    "verify (camera frame)": lambda c, h, door: c.post("/v1/device/verify", headers=h, data={"door_id": str(door)}, files={"image": ("f.jpg", FRAME, "image/jpeg")}),
    "face-verify": lambda c, h, door: c.post("/v1/device/face-verify", headers=h, data={"door_id": str(door)}, files={"image": ("f.jpg", FRAME, "image/jpeg")}),
    "plate-verify": lambda c, h, door: c.post("/v1/device/plate-verify", headers=h, json={"door_id": door, "plate": "京A12345"}),
}


def _normalised(answer: Any, row_id: int) -> tuple[int, str]:
    return answer.status_code, re.sub(rf"\b{row_id}\b", "<id>", answer.text)


@pytest.mark.parametrize("route", ROUTES)
def test_a_missing_door_and_another_devices_door_answer_alike(client: TestClient, world: World, route: str) -> None:
    ask, device = ROUTES[route], world.auth("device1")
    others = ask(client, device, world.ids["door2"])  # exists, belongs to device2
    missing = ask(client, device, MISSING)
    assert others.status_code == 403 and others.json()["error"]["code"] == "door_not_assigned", others.text
    assert _normalised(others, world.ids["door2"]) == _normalised(missing, MISSING)


def test_an_event_for_a_missing_door_is_rejected_like_one_for_another_devices_door(client: TestClient, world: World) -> None:
    def upload(door: int) -> Any:
        event = {"event_id": "probe-0001", "kind": "door_opened", "at": "2026-12-01T10:00:00Z", "door_id": door}
        return client.post("/v1/device/events", headers=world.auth("device1"), json={"events": [event]})

    others, missing = upload(world.ids["door2"]), upload(MISSING)
    assert others.status_code == 200 and others.json()["rejected"] == {"probe-0001": "door_not_of_device"}
    assert _normalised(others, world.ids["door2"]) == _normalised(missing, MISSING)


def test_the_sync_feed_of_another_site_looks_like_a_missing_site(client: TestClient, world: World) -> None:
    device = world.auth("device1")
    for path in ("feed", "events"):
        others = client.get(f"/v1/sync/sites/{world.ids['site_b']}/{path}", headers=device)
        missing = client.get(f"/v1/sync/sites/{MISSING}/{path}", headers=device)
        assert others.status_code == 404 and others.json()["error"]["code"] == "site_not_found"
        assert _normalised(others, world.ids["site_b"]) == _normalised(missing, MISSING)


def test_an_admin_still_hears_that_a_door_does_not_exist(client: TestClient, world: World) -> None:
    """Admin routes keep their 404: an admin may list the doors anyway."""
    answer = client.get(f"/v1/doors/{MISSING}", headers=world.auth("admin_a"))
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "door_not_found"
