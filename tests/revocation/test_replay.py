"""Replay protection of dynamic presentations: shared by every node, remembered only while useful."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.passes import dynamic, issuing
from idsvc.passes.verify import PassVerifier
from tests.world import World


@pytest.mark.parametrize("offset", range(0, 30, 7))
@pytest.mark.parametrize("skew", [-1, 0, 1])
def test_marker_outlives_the_accepted_window_and_no_more(offset: int, skew: int) -> None:
    at = datetime(2026, 11, 29, tzinfo=UTC) + timedelta(seconds=offset)
    step = dynamic.step_at(at) + skew
    ttl = dynamic.replay_ttl(step, at)
    last_accepted = (step + dynamic.ACCEPTED_SKEW_STEPS + 1) * dynamic.STEP_SECONDS - 1
    assert at.timestamp() + ttl > last_accepted  # remembered as long as the step is accepted
    assert ttl <= dynamic.STEP_SECONDS * (2 * dynamic.ACCEPTED_SKEW_STEPS + 1) + dynamic.REPLAY_SLACK_SECONDS


def test_a_presentation_used_on_one_node_is_refused_on_another(ctx: AppContext, world: World, uses_redis: bool) -> None:
    holder = dynamic.Holder()
    with ctx.db.session() as s:
        issued = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"], holder_public_key=holder.public_key)
    door = world.ids["door1"]
    shown = holder.present(issued.text, door_id=door)
    # Without Redis there is one node; with it, a second context is a second node on the same store.
    other = AppContext.from_settings(ctx.settings) if uses_redis else ctx
    try:
        first = PassVerifier(ctx, refresh_seconds=0).decide(door, shown, actor="test")
        second = PassVerifier(other, refresh_seconds=0).decide(door, shown, actor="test")
        assert first.allow is True
        assert second.reasons == ["presentation_replayed"]
        if uses_redis:
            key = f"{ctx.settings.redis_prefix}pres:{issued.row.pass_id}:{dynamic.step_at(first.at)}:{door}"
            assert 0 < ctx.kv.client.ttl(key) <= 95  # type: ignore[attr-defined]
    finally:
        if other is not ctx:
            other.close()
