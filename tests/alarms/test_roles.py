"""Every alarm and sensor endpoint against every role, with the status each must get (the registry's
role matrix leaves /v1/alarms and /v1/sensors to this file). Denied calls leave the audit chain alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from idsvc.alarms import service
from idsvc.audit.service import chain_head
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from tests.alarms.conftest import SensorWorld

ROLES = ("district", "admin_a", "admin_b", "owner1", "owner2", "tenant1", "device1", "anonymous")
PREFIXES = ("/v1/alarms", "/v1/sensors", "/v1/device/sensor-")


def expect(default: int, **statuses: int) -> dict[str, int]:
    out = {role: default for role in ROLES} | {"tenant1": 403, "device1": 403, "anonymous": 401}
    return out | statuses


READERS = expect(200)  # every admin and owner may list (their own rows)
UNIT1_ROW = expect(404, district=200, admin_a=200, owner1=200)
UNIT1_ADMIN = expect(404, district=200, admin_a=200, owner1=403)


@dataclass
class Row:
    method: str
    route: str
    url: str
    statuses: dict[str, int]
    body: Callable[[dict[str, int], str], dict[str, Any]] | None = None


def _reading(ids: dict[str, int], role: str) -> dict[str, Any]:
    return {"readings": [{"event_id": f"reading-{role}", "sensor": "smoke-101", "at": utcnow().isoformat(), "values": {"smoke": False}}]}


ROWS = [
    Row("GET", "/v1/alarms", "/v1/alarms", READERS),
    Row("GET", "/v1/alarms/summary", "/v1/alarms/summary", READERS),
    Row("GET", "/v1/alarms/{alarm_id}", "/v1/alarms/{alarm}", UNIT1_ROW),
    Row("POST", "/v1/alarms/{alarm_id}/acknowledge", "/v1/alarms/{alarm}/acknowledge", UNIT1_ROW, body=lambda i, r: {}),
    Row("POST", "/v1/alarms/{alarm_id}/clear", "/v1/alarms/{alarm}/clear", UNIT1_ADMIN, body=lambda i, r: {"reason": "checked"}),
    Row("POST", "/v1/sensors", "/v1/sensors", expect(403, district=201, admin_a=201),
        body=lambda i, r: {"site_id": i["site_a"], "building_id": i["building_a"], "device_id": i["ingest"], "code": f"new-{r}", "name": "n", "family": "zigbee2mqtt", "kind": "smoke"}),
    Row("GET", "/v1/sensors", "/v1/sensors", READERS),
    Row("GET", "/v1/sensors/{sensor_id}", "/v1/sensors/{smoke-101}", UNIT1_ROW),
    Row("PATCH", "/v1/sensors/{sensor_id}", "/v1/sensors/{smoke-101}", UNIT1_ADMIN, body=lambda i, r: {"active": True}),
    Row("GET", "/v1/sensors/{sensor_id}/emissions", "/v1/sensors/{smoke-101}/emissions", UNIT1_ROW),
    # The stream's allowed roles are tested by the live-notice tests; here only who is refused.
    Row("GET", "/v1/alarms/stream", "/v1/alarms/stream", {"tenant1": 403, "device1": 403, "anonymous": 401}),
    # Only a device reports, and only for its own sensors: device1 is a lock, so its reading is rejected (200, "rejected").
    Row("POST", "/v1/device/sensor-readings", "/v1/device/sensor-readings", expect(403, device1=200, anonymous=401), body=_reading),
    # A lock is no sensor ingest: its heartbeat is refused (not_a_sensor_ingest).
    Row("POST", "/v1/device/sensor-heartbeat", "/v1/device/sensor-heartbeat", expect(403, anonymous=401)),
]


def _head(ctx: AppContext) -> tuple[int, str]:
    with ctx.db.session() as s:
        return chain_head(s)


def test_every_alarm_endpoint_has_a_row(client: TestClient) -> None:
    paths = client.app.openapi()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() for m in ops if p.startswith(PREFIXES)}
    assert routes == {(row.method, row.route) for row in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.method} {r.route}" for r in ROWS])
def test_role_matrix(row: Row, ctx: AppContext, client: TestClient, sensor_world: SensorWorld) -> None:
    w = sensor_world.world
    ids = w.ids | sensor_world.ids
    for role, status in row.statuses.items():
        with ctx.db.session() as s:
            alarm, _ = service.raise_alarm(s, ctx.bus, service.Signal(source=f"sensor:{ids['smoke-101']}", type="smoke", site_id=ids["site_a"], unit_id=ids["unit1"], at=utcnow()), "test")
            ids["alarm"] = alarm.id
        url = row.url.replace("{alarm}", str(ids["alarm"])).replace("{smoke-101}", str(ids["smoke-101"]))
        before = _head(ctx)
        headers = w.auth(role) if role != "anonymous" else {}
        answer = client.request(row.method, url, headers=headers, json=row.body(ids, role) if row.body else None)
        assert answer.status_code == status, f"{role}: {answer.status_code} {answer.text[:200]}"
        if status >= 400:
            assert "error" in answer.json()
            assert _head(ctx) == before, f"{role}: a refused call wrote to the audit trail"
        if row.route == "/v1/device/sensor-readings" and status == 200:
            assert answer.json()["rejected"] == {"reading-device1": "sensor_not_of_device"}
