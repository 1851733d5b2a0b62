"""Two service processes on one PostgreSQL and one Redis: a revocation made on one is denied by the
other (the delay is measured by bench/revocation_propagation.py, not asserted here)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.passes import issuing
from tests.revocation.nodes import service_nodes
from tests.world import World


@pytest.fixture
def two_nodes(ctx: AppContext, tmp_path: Path) -> list[str]:
    if ctx.db.is_sqlite or not ctx.settings.redis_url:
        pytest.skip("several nodes need PostgreSQL and Redis: set IDSVC_TEST_DATABASE_URL and IDSVC_TEST_REDIS_URL")
    master_key = (ctx.settings.data_dir / "master.key").read_text().strip()  # the test context's generated key
    env = {
        "IDSVC_DATABASE_URL": ctx.settings.database_url,
        "IDSVC_REDIS_URL": ctx.settings.redis_url,
        "IDSVC_REDIS_PREFIX": ctx.settings.redis_prefix,
        "IDSVC_MASTER_KEY": master_key,
    }
    with service_nodes(2, env, tmp_path) as urls:
        yield urls


def _until(condition, limit_s: float = 10.0) -> bool:  # noqa: ANN001
    """Poll ``condition`` until it holds or ``limit_s`` passes (bounded: never a hang)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_revoked_on_node_a_denied_on_node_b(ctx: AppContext, world: World, two_nodes: list[str]) -> None:
    node_a, node_b = two_nodes
    with ctx.db.session() as s:
        issued = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])
    with httpx.Client(timeout=5) as http:

        def verdict() -> dict:
            answer = http.post(f"{node_b}/v1/device/verify", json={"door_id": world.ids["door1"], "qr_text": issued.text}, headers=world.auth("device1"))
            assert answer.status_code == 200, answer.text
            return answer.json()

        assert verdict()["allow"] is True  # node B holds the pass as valid in its caches
        revoked = http.post(f"{node_a}/v1/passes/{issued.row.id}/status", json={"status": "revoked", "reason": "lost"}, headers=world.auth("admin_a"))
        assert revoked.status_code == 200
        assert _until(lambda: "pass_revoked" in verdict()["reasons"])

        # A device suspended on node A loses its key on node B too (node B remembered it).
        suspended = http.post(f"{node_a}/v1/devices/{world.ids['device1']}/suspend", json={"reason": "tampered"}, headers=world.auth("admin_a"))
        assert suspended.status_code == 200

        def refused() -> bool:
            answer = http.post(f"{node_b}/v1/device/verify", json={"door_id": world.ids["door1"], "qr_text": issued.text}, headers=world.auth("device1"))
            return answer.status_code == 401

        assert _until(refused)


def test_a_grant_suspended_on_node_a_closes_the_door_on_node_b(ctx: AppContext, world: World, two_nodes: list[str]) -> None:
    """Node B answers from its in-process access index; node A's change notice must drop that copy."""
    node_a, node_b = two_nodes
    with ctx.db.session() as s:
        issued = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])
    with httpx.Client(timeout=5) as http:

        def reasons() -> list[str]:
            answer = http.post(f"{node_b}/v1/device/verify", json={"door_id": world.ids["door1"], "qr_text": issued.text}, headers=world.auth("device1"))
            assert answer.status_code == 200, answer.text
            return answer.json()["reasons"]  # type: ignore[no-any-return]

        assert reasons() == []  # node B has loaded the site's grants
        suspended = http.post(f"{node_a}/v1/grants/{world.ids['grant1']}/suspend", json={"reason": "rent unpaid"}, headers=world.auth("admin_a"))
        assert suspended.status_code == 200
        assert _until(lambda: reasons() == ["grant_suspended"])
        reinstated = http.post(f"{node_a}/v1/grants/{world.ids['grant1']}/reinstate", json={"reason": "paid"}, headers=world.auth("admin_a"))
        assert reinstated.status_code == 200
        assert _until(lambda: reasons() == [])
