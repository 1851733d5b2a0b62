"""A site admin uploads a plan image and places doors on it; the screen's map uses both."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image

from tests.console.conftest import csrf_of, sign_in
from tests.world import World


def _jpeg_with_gps(size: tuple[int, int] = (800, 500)) -> bytes:
    picture = Image.new("RGB", size, (230, 236, 230))
    exif = Image.Exif()
    exif[0x8825] = {2: (22.0, 32.0, 0.0)}  # GPSInfo: where the photo of the plan was taken
    out = io.BytesIO()
    picture.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_upload_a_plan_and_place_a_door(client: TestClient, world: World) -> None:
    site, door = world.ids["site_a"], world.ids["door1"]
    sign_in(client, world.tokens["admin_a"])
    csrf = csrf_of(client.get(f"/console/sites/{site}/plan/edit").text)
    generated = client.get(f"/console/sites/{site}/plan")
    assert generated.headers["content-type"].startswith("image/svg+xml")
    answer = client.post(f"/console/sites/{site}/plan/image", data={"csrf": csrf}, files={"image": ("plan.jpg", _jpeg_with_gps(), "image/jpeg")})
    assert answer.status_code == 200, answer.text
    served = client.get(f"/console/sites/{site}/plan")
    assert served.headers["content-type"] == "image/jpeg"
    stored = Image.open(io.BytesIO(served.content))
    assert stored.size == (800, 500) and not stored.getexif().get(0x8825)  # pixels only: the GPS tag is gone
    assert client.post(f"/console/sites/{site}/plan/doors", data={"csrf": csrf, "door_id": door, "x": "0.25", "y": "0.75"}).status_code == 200
    plan = client.get(f"/console/sites/{site}/doors.json").json()
    assert (plan["width"], plan["height"]) == (800, 500)
    assert {(d["id"], d["x"], d["y"]) for d in plan["doors"] if d["id"] == door} == {(door, 0.25, 0.75)}
    events = client.get("/v1/audit/events", params={"kind": "door.placed"}, headers=world.auth("admin_a")).json()["events"]
    assert [e["door_id"] for e in events] == [door]


def test_bad_plans_and_places_are_clear_errors(client: TestClient, world: World) -> None:
    site = world.ids["site_a"]
    sign_in(client, world.tokens["admin_a"])
    csrf = csrf_of(client.get(f"/console/sites/{site}/plan/edit").text)
    gif = io.BytesIO()
    Image.new("RGB", (50, 50)).save(gif, format="GIF")
    answer = client.post(f"/console/sites/{site}/plan/image", data={"csrf": csrf}, files={"image": ("plan.gif", gif.getvalue(), "image/gif")})
    assert answer.status_code == 415 and 'data-code="image_format_unsupported"' in answer.text
    answer = client.post(f"/console/sites/{site}/plan/image", data={"csrf": csrf})
    assert answer.status_code == 422 and 'data-code="image_missing"' in answer.text
    outside = client.post(f"/console/sites/{site}/plan/doors", data={"csrf": csrf, "door_id": world.ids["door1"], "x": "1.5", "y": "0.5"})
    assert outside.status_code == 422
    other_site = client.post(f"/console/sites/{site}/plan/doors", data={"csrf": csrf, "door_id": world.ids["entrance_b"], "x": "0.5", "y": "0.5"})
    assert other_site.status_code == 404  # site B's door is invisible to site A's admin


def test_only_the_sites_admins_edit_its_plan(client: TestClient, world: World) -> None:
    site = world.ids["site_a"]
    for role, status in {"district": 200, "admin_a": 200, "admin_b": 404, "owner1": 403, "tenant1": 403}.items():
        sign_in(client, world.tokens[role])
        assert client.get(f"/console/sites/{site}/plan/edit").status_code == status, role
