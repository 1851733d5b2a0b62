"""Small shared key-value store: Redis when ``IDSVC_REDIS_URL`` is set, an in-process twin otherwise.

Only the operations the service needs (first-use markers for replay protection and signed-out
console sessions, counters with a window for rate limits) so that both backends behave the same and are tested the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import redis

log = logging.getLogger(__name__)


class KeyValueStore(Protocol):
    def add_once(self, key: str, ttl_seconds: int) -> bool:
        """Mark ``key`` as used for ``ttl_seconds``; True only for the first caller."""

    def incr(self, key: str, ttl_seconds: int) -> int:
        """Increment a counter that disappears ``ttl_seconds`` after its first increment."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` is set and not expired (a marker of :meth:`add_once`, a counter of :meth:`incr`)."""

    def clear(self) -> None:
        """Forget every key of this store (tests and ``idsvc`` maintenance only)."""

    def ping(self) -> str:
        """What the store is, when it answers (readiness); raises when it does not."""


class MemoryStore:
    """Thread-safe TTL store for single-node deployments; expired keys are swept when it is full, and a
    store full of live keys refuses rather than forgets (bounded memory, fail closed)."""

    def __init__(self, max_keys: int = 1_000_000) -> None:
        self._values: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def _sweep(self, now: float) -> bool:
        """Drop expired keys when full; False when it is still full of live ones."""
        if len(self._values) < self._max_keys:
            return True
        for key in [k for k, (exp, _) in self._values.items() if exp <= now]:
            del self._values[key]
        return len(self._values) < self._max_keys

    def add_once(self, key: str, ttl_seconds: int) -> bool:
        now = time.monotonic()
        with self._lock:
            current = self._values.get(key)
            if current is not None and current[0] > now:
                return False
            if not self._sweep(now):
                # Forgetting a live marker would let a replay through: refuse (the door denies) instead.
                log.warning("replay store full of live markers (%d); refusing new presentations", self._max_keys)
                return False
            self._values[key] = (now + ttl_seconds, 1)
            return True

    def incr(self, key: str, ttl_seconds: int) -> int:
        now = time.monotonic()
        with self._lock:
            current = self._values.get(key)
            if current is None or current[0] <= now:
                if not self._sweep(now):
                    return self._max_keys  # counters are rate limits: full means "too many"
                self._values[key] = (now + ttl_seconds, 1)
                return 1
            self._values[key] = (current[0], current[1] + 1)
            return current[1] + 1

    def exists(self, key: str) -> bool:
        with self._lock:
            current = self._values.get(key)
            return current is not None and current[0] > time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def ping(self) -> str:
        return "in-process"


class RedisStore:
    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix

    def add_once(self, key: str, ttl_seconds: int) -> bool:
        return bool(self.client.set(self.prefix + key, b"1", nx=True, ex=ttl_seconds))

    def incr(self, key: str, ttl_seconds: int) -> int:
        pipe = self.client.pipeline()
        pipe.incr(self.prefix + key)
        pipe.expire(self.prefix + key, ttl_seconds, nx=True)
        count, _ = pipe.execute()
        return int(count)

    def exists(self, key: str) -> bool:
        return bool(self.client.exists(self.prefix + key))

    def ping(self) -> str:
        self.client.ping()
        return "redis"

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start : start + 1000])


def make_store(redis_url: str, prefix: str) -> KeyValueStore:
    return RedisStore(redis_url, prefix) if redis_url else MemoryStore()
