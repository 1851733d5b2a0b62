"""The short fault-injection suite (issue 11): a simulated population at a door while faults are
injected; the invariants are zero wrongful opens, zero 500s, zero lost decisions, and recovery
without a restart. The long form, with more rounds and a SIGKILLed service process, is bench/chaos.py.

On embedded defaults only the population's own attacks run (replays, skewed clocks, forged, revoked
and expired passes); on PostgreSQL + Redis the database is black-holed and cut, and Redis cut, on the
way (tests/netfaults.py).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from idsvc.context import AppContext
from tests.chaos import Attempt, Tally, build_population, drive, lost_decisions
from tests.reliability.conftest import Faulty
from tests.world import World


def _poster(client: TestClient, headers: dict[str, str], door_id: int) -> Any:
    def post(attempt: Attempt) -> tuple[int, dict[str, Any]]:
        answer = client.post("/v1/device/verify", headers=headers, json={"door_id": door_id, "qr_text": attempt.qr_text})
        return answer.status_code, answer.json()

    return post


def _check(tally: Tally, ctx: AppContext) -> None:
    ctx.decision_log.flush()  # type: ignore[union-attr]
    assert tally.wrongful_opens == [], tally.answers
    assert tally.server_errors == 0, tally.answers
    assert lost_decisions(ctx, tally.decided) == []
    for kind in ("replay", "skewed", "stranger", "revoked", "expired", "forged"):
        assert tally.allows_of(kind) == 0, kind


def test_the_population_never_opens_wrongly(client: TestClient, ctx: AppContext, world: World) -> None:
    population = build_population(ctx, world)
    tally = Tally()
    drive(_poster(client, population.lock_headers, population.door_id), population, rounds=8, tally=tally)
    _check(tally, ctx)
    assert tally.allows_of("tenant") == 8 * 4 and tally.allows_of("phone") == 8  # nothing refused that should open


def test_faults_on_the_way_never_open_wrongly_and_the_node_recovers(faulty: Faulty, ctx: AppContext, world: World) -> None:
    population = build_population(ctx, world)
    post = _poster(faulty.client, population.lock_headers, population.door_id)
    tally = Tally()
    drive(post, population, rounds=2, tally=tally)

    faulty.db.blackhole()
    time.sleep(1.1)  # past the one-second version poll: decisions now need the database
    drive(post, population, rounds=1, tally=tally, seed=1)
    faulty.db.heal()
    faulty.db.cut()  # what was black-holed is cut off as well now: a server restart
    drive(post, population, rounds=1, tally=tally, seed=2)
    faulty.db.heal()
    faulty.redis.cut()
    drive(post, population, rounds=1, tally=tally, seed=3)
    faulty.redis.heal()

    recovered = Tally()  # no restart: the same app, pools and subscriptions
    deadline = time.monotonic() + 15
    while recovered.allows_of("tenant") == 0:
        assert time.monotonic() < deadline, f"no recovery: {recovered.answers}"
        drive(post, population, rounds=1, tally=recovered, seed=4)
    drive(post, population, rounds=2, tally=recovered, seed=5)
    for part in (tally, recovered):
        _check(part, faulty.ctx)
    assert tally.answers["503 service_degraded"] > 0 and tally.answers["503 replay_store_unavailable"] > 0
    assert recovered.allows_of("phone") >= 2 and recovered.answers["503 service_degraded"] == 0
