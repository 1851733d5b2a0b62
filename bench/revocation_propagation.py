"""How long a revocation takes to reach another service node and a subscribed feed consumer.

    .venv/bin/python bench/revocation_propagation.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test \
        --redis-url redis://127.0.0.1:6379/0 [--revocations 200]

Two ``idsvc serve`` processes (A and B) on one PostgreSQL (a throw-away database created here and
dropped after) and one Redis. For each of ``--revocations`` passes, one at a time:

- t0, then ``POST /v1/passes/{id}/status`` (revoked) on node A;
- this thread asks node B ``POST /v1/device/verify`` with that pass in a tight loop until it is
  denied with ``pass_revoked`` (2 ms apart): "first denial on another node";
- a feed consumer thread, as a bridge does, holds node B's event stream
  (``GET /v1/sync/sites/{id}/events``), and on each announced version fetches the signed delta,
  verifies and applies it (idsvc.sync.verify): the time at which its state shows the pass revoked
  is "at a subscribed feed consumer".

Prints p50 / p99 / max in milliseconds, and the revoke call's own latency.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from idsvc.auth.principal import OPERATOR
from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.core.sealing import new_master_key
from idsvc.db.migrate import upgrade
from idsvc.passes import issuing, keys
from idsvc.sync.events import versions
from idsvc.sync.verify import REVOKED, FeedState, apply, root_key
from tests.revocation.nodes import service_nodes
from tests.world import build_world


# Between two verify calls to node B: each decision is an audit event, and a flood of them would
# compete with the revocation's own audit write (one hash chain) and inflate what is measured.
POLL_PAUSE_S = 0.002


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class FeedConsumer(threading.Thread):
    """A bridge's feed loop: stream of versions -> signed delta -> verified state."""

    def __init__(self, node: str, site_id: int, token: str, root: bytes) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=node, headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(10.0, read=None))
        self.site_id, self.root = site_id, root_key(root)
        self.state: FeedState = apply(None, self._feed(None), self.root, site_id=site_id)
        self.waiting: dict[bytes, float] = {}  # pass id -> t0 of its revoke call
        self.seen: dict[bytes, float] = {}  # pass id -> seconds from t0 to the verified state
        self.announced: dict[bytes, float] = {}  # pass id -> seconds from t0 to the SSE event
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def _feed(self, since: int | None) -> bytes:
        answer = self.http.get(f"/v1/sync/sites/{self.site_id}/feed", params={} if since is None else {"since": since})
        answer.raise_for_status()
        return answer.content

    def run(self) -> None:
        try:
            with self.http.stream("GET", f"/v1/sync/sites/{self.site_id}/events") as stream:
                for version in versions(stream.iter_lines()):
                    if version > self.state.version:
                        self._catch_up(announced_at=time.perf_counter())
        except httpx.TransportError:
            if not self.stop.is_set():  # the nodes stopping at the end closes the stream
                raise

    def _catch_up(self, announced_at: float) -> None:
        self.state = apply(self.state, self._feed(self.state.version), self.root, site_id=self.site_id)
        now = time.perf_counter()
        with self.lock:
            for pass_id, t0 in list(self.waiting.items()):
                if self.state.pass_status(pass_id, b"", 0) == REVOKED:
                    self.seen[pass_id] = now - t0
                    self.announced[pass_id] = announced_at - t0
                    del self.waiting[pass_id]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL server URL; a throw-away database is created on it")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--revocations", type=int, default=200)
    args = parser.parse_args()

    name = f"idsvc_bench_{secrets.token_hex(4)}"
    admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    master_key, prefix = new_master_key(), f"idsvc-bench-{secrets.token_hex(4)}:"
    try:
        upgrade(url)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(database_url=url, redis_url=args.redis_url, redis_prefix=prefix, master_key=master_key, data_dir=Path(tmp), _env_file=None)  # type: ignore[call-arg]
            ctx = AppContext.from_settings(settings)
            world = build_world(ctx)
            with ctx.db.session() as s:
                issued = [issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]) for _ in range(args.revocations)]
                root = keys.root_public_key(s).public_der  # type: ignore[union-attr]
            env = {"IDSVC_DATABASE_URL": url, "IDSVC_REDIS_URL": args.redis_url, "IDSVC_REDIS_PREFIX": prefix, "IDSVC_MASTER_KEY": master_key}
            with service_nodes(2, env, Path(tmp)) as (node_a, node_b):
                run(node_a, node_b, world, issued, root)
            ctx.close()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(node_a: str, node_b: str, world, issued: list[issuing.IssuedPass], root: bytes) -> None:  # noqa: ANN001
    consumer = FeedConsumer(node_b, world.ids["site_a"], world.tokens["device1"], root)
    consumer.start()
    to_node, to_feed, call, after_call = [], [], [], []
    first_poll = 0  # revocations node B already denied at the first ask after the call returned
    with httpx.Client(timeout=5) as http:
        for n, item in enumerate(issued):
            body = {"door_id": world.ids["door1"], "qr_text": item.text}
            if n == 0:  # warm node B: keys, passes and the device key in its caches
                assert http.post(f"{node_b}/v1/device/verify", json=body, headers=world.auth("device1")).json()["allow"]
            pass_id = bytes.fromhex(item.row.pass_id)
            t0 = time.perf_counter()
            with consumer.lock:
                consumer.waiting[pass_id] = t0
            answer = http.post(f"{node_a}/v1/passes/{item.row.id}/status", json={"status": "revoked", "reason": "bench"}, headers=world.auth("admin_a"))
            call.append(time.perf_counter() - t0)
            answer.raise_for_status()
            deadline = t0 + 10
            polls = 0
            while time.perf_counter() < deadline:
                polls += 1
                if "pass_revoked" in http.post(f"{node_b}/v1/device/verify", json=body, headers=world.auth("device1")).json()["reasons"]:
                    to_node.append(time.perf_counter() - t0)
                    after_call.append(to_node[-1] - call[-1])
                    first_poll += polls == 1
                    break
                time.sleep(POLL_PAUSE_S)
            while pass_id not in consumer.seen and time.perf_counter() < deadline:
                time.sleep(0.001)
            if pass_id in consumer.seen:
                to_feed.append(consumer.seen[pass_id])
    consumer.stop.set()
    consumer.http.close()
    print(f"{len(issued)} revocations on node A; pub/sub between nodes, SSE + signed delta to the consumer")
    for label, values in (("revoke call on node A", call), ("first denial on node B", to_node),
                          ("node B, after call returned", after_call), ("SSE event at the consumer", list(consumer.announced.values())),
                          ("subscribed feed consumer", to_feed)):
        if values:
            print(f"  {label:<28} n={len(values):>4}  p50 {statistics.median(values) * 1000:7.1f} ms  p99 {percentile(values, 0.99) * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms")
    print(f"  node B denied at the first ask after the revoke call returned: {first_poll} of {len(to_node)}")
    missing = len(issued) - len(to_node), len(issued) - len(to_feed)
    if any(missing):
        print(f"  not seen within 10 s: node B {missing[0]}, feed consumer {missing[1]}")


if __name__ == "__main__":
    main()
