"""The scheduler inside the service: each job runs on one node at a time and once per period, a node
that dies mid-run does not leave the job stuck, and its state is visible in the API and the CLI.
Two nodes here are two schedulers with their own database connections (and one a separate process)
against the same real database: PostgreSQL advisory locks, or on SQLite the per-job lock file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from idsvc.app import create_app
from idsvc.context import AppContext
from idsvc.core.db import Database
from idsvc.core.scheduler import Job, ScheduledJob, Scheduler
from tests.privacy.conftest import Cli
from tests.world import World


@pytest.fixture
def nodes(ctx: AppContext, tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    a, b = Database(ctx.db.url, ctx.sealer), Database(ctx.db.url, ctx.sealer)
    yield a, b
    a.dispose()
    b.dispose()


def _blocking_job(runs: list[str], node: str, release: threading.Event, entered: threading.Event) -> Job:
    def run(dry_run: bool) -> dict[str, Any]:
        runs.append(node)
        entered.set()
        release.wait(20)
        return {"node": node}

    return Job("exclusive", timedelta(hours=1), run, "test job")


def test_two_nodes_competing_for_a_job_run_it_once(nodes: tuple[Database, Database], tmp_path: Path) -> None:
    runs: list[str] = []
    release, entered = threading.Event(), threading.Event()
    a = Scheduler(nodes[0], [_blocking_job(runs, "a", release, entered)], tmp_path / "locks", node="a")
    b = Scheduler(nodes[1], [_blocking_job(runs, "b", release, entered)], tmp_path / "locks", node="b")
    first = threading.Thread(target=a.run_due)
    first.start()
    assert entered.wait(10)
    assert b.run_due() == []  # a holds the job's lock
    assert b.run_now("exclusive") is None  # an operator's run waits its turn too
    release.set()
    first.join(10)
    assert b.run_due() == []  # a ran it this period: not due for b either
    assert runs == ["a"]
    state = {s["job"]: s for s in b.states()}["exclusive"]
    assert state["last_node"] == "a" and state["last_ok"] is True and state["runs"] == 1 and state["last_result"] == {"node": "a"}
    assert state["next_run_at"] > state["last_started_at"]


def test_many_nodes_at_once_still_one_run(ctx: AppContext, tmp_path: Path) -> None:
    runs: list[str] = []
    barrier = threading.Barrier(6)
    databases = [Database(ctx.db.url, ctx.sealer) for _ in range(6)]

    def node(n: int) -> None:
        job = Job("busy", timedelta(hours=1), lambda dry_run: (runs.append(str(n)), time.sleep(0.3), {})[-1], "test")
        scheduler = Scheduler(databases[n], [job], tmp_path / "locks", node=str(n))
        barrier.wait(10)
        scheduler.run_due()

    threads = [threading.Thread(target=node, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for db in databases:
        db.dispose()
    assert len(runs) == 1


_NODE = textwrap.dedent("""
    import sys, time
    from datetime import timedelta
    from pathlib import Path
    from idsvc.core.db import Database
    from idsvc.core.scheduler import Job, Scheduler
    def run(dry_run):
        print("started", flush=True)
        time.sleep(120)
        return {}
    Scheduler(Database(sys.argv[1]), [Job("exclusive", timedelta(hours=1), run, "t")], Path(sys.argv[2]), node="doomed").run_due()
""")


def test_a_node_that_dies_mid_run_does_not_leave_the_job_stuck(ctx: AppContext, nodes: tuple[Database, Database], tmp_path: Path) -> None:
    doomed = subprocess.Popen([sys.executable, "-c", _NODE, ctx.db.url, str(tmp_path / "locks")], stdout=subprocess.PIPE, text=True)
    try:
        assert doomed.stdout is not None and doomed.stdout.readline().strip() == "started"
        runs: list[str] = []
        release, entered = threading.Event(), threading.Event()
        release.set()
        survivor = Scheduler(nodes[1], [_blocking_job(runs, "survivor", release, entered)], tmp_path / "locks", node="survivor")
        assert survivor.run_due() == []  # still running over there
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
        deadline = time.monotonic() + 10
        while not runs and time.monotonic() < deadline:  # the lock goes with the process (PostgreSQL notices the socket close)
            survivor.run_due()
            time.sleep(0.1)
        assert runs == ["survivor"]
        assert {s["job"]: s for s in survivor.states()}["exclusive"]["last_node"] == "survivor"
    finally:
        if doomed.poll() is None:
            doomed.kill()


def test_a_failing_job_is_retried_sooner_and_says_why(nodes: tuple[Database, Database], tmp_path: Path) -> None:
    def broken(dry_run: bool) -> dict[str, Any]:
        raise RuntimeError("disk full")

    scheduler = Scheduler(nodes[0], [Job("broken", timedelta(days=1), broken, "t")], tmp_path / "locks", retry=timedelta(minutes=10))
    assert scheduler.run_due() == ["broken"]
    state = scheduler.states()[0]
    assert state["last_ok"] is False and state["last_result"] == {"error": "RuntimeError: disk full"}
    assert timedelta(minutes=9) < state["next_run_at"] - state["last_started_at"] <= timedelta(minutes=10)


def test_the_service_runs_its_jobs_by_itself(ctx: AppContext, world: World) -> None:
    """`idsvc serve` (create_app's lifespan) starts the scheduler: every job runs without an operator."""
    settings = ctx.settings.model_copy(update={"scheduler_enabled": True, "scheduler_tick_seconds": 0.2})
    node = AppContext.from_settings(settings)
    try:
        with TestClient(create_app(node)):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with ctx.db.session() as s:
                    done = {row.name: row for row in s.query(ScheduledJob) if row.last_finished_at is not None}
                if len(done) == 5:
                    break
                time.sleep(0.2)
    finally:
        node.close()
    assert sorted(done) == ["emission_prune", "journal_compaction", "retention", "sync_prune", "template_purge"]
    assert all(row.last_ok for row in done.values()), {n: r.last_result for n, r in done.items()}


def test_job_state_and_runs_through_the_api(client: TestClient, world: World) -> None:
    admin = world.auth("district")
    listed = client.get("/v1/jobs", headers=admin)
    assert listed.status_code == 200
    assert [j["job"] for j in listed.json()] == ["template_purge", "sync_prune", "journal_compaction", "retention", "emission_prune"]
    assert client.get("/v1/jobs", headers=world.auth("admin_a")).status_code == 403
    dry = client.post("/v1/jobs/retention/run", params={"dry_run": "true"}, headers=admin)
    assert dry.status_code == 200 and dry.json()["dry_run"] is True and dry.json()["result"]["dry_run"] is True
    assert {j["job"]: j["runs"] for j in client.get("/v1/jobs", headers=admin).json()}["retention"] == 0  # a dry run is not a run
    ran = client.post("/v1/jobs/sync_prune/run", headers=admin).json()
    assert ran["ok"] is True and set(ran["result"]) == {"pruned_through", "deleted"}
    state = {j["job"]: j for j in client.get("/v1/jobs", headers=admin).json()}["sync_prune"]
    assert state["runs"] == 1 and state["last_ok"] is True and state["next_run_at"] is not None
    missing = client.post("/v1/jobs/nope/run", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"


def test_job_state_and_runs_from_the_command_line(world: World, cli: Cli) -> None:
    assert cli.json("jobs", "run", "template_purge", "--dry-run")["result"] == {"templates_deleted_for_people": []}
    ran = cli.json("jobs", "run", "journal_compaction")
    assert ran["ok"] is True and ran["result"] == {"decisions_replayed": 0}
    state = {j["job"]: j for j in cli.json("jobs", "list")}
    assert state["journal_compaction"]["runs"] == 1 and state["template_purge"]["runs"] == 0
    code, output = cli.run("jobs", "run", "nope")
    assert code == 1 and "no job 'nope'" in output


def test_the_operations_page_lists_every_job_and_its_period(ctx: AppContext) -> None:
    from idsvc.jobs import catalogue
    from tests.conftest import REPO_ROOT

    lines = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8").splitlines()
    header = lines.index("| job | every | what |")
    rows = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append((cells[0].strip("`"), cells[1]))
    periods = {timedelta(days=1): "day", timedelta(minutes=5): "5 min"}
    assert rows == [(job.name, periods[job.every]) for job in catalogue(ctx)]  # type: ignore[arg-type]
