"""A one-second memory of resolved API keys.

A lock asking many times a second should not cost a database read each time, and a revoked key or
suspended device must stop working everywhere within a second: a short TTL gives both without a
notification channel.
"""

from __future__ import annotations

import threading
import time

from idsvc.auth.principal import Principal


class PrincipalCache:
    def __init__(self, ttl_seconds: float = 1.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, token_hash: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # simplest bound; refilling costs one read per active key
            self._entries[token_hash] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
