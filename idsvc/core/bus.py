"""Notices between service nodes: "this changed, at feed version V", delivered in milliseconds.

With a Redis URL every node publishes on one pub/sub channel and a listener thread per process hands
each notice to the local subscribers (deny set, pass verifier, auth cache, bridge event streams).
Without one (single node) a publish calls the subscribers directly. Pub/sub is fire-and-forget: a
node that loses its connection re-subscribes and tells subscribers to ``resync`` (reload from the
shared store), and the one-second version polls of passes/verify.py remain as the backstop.

Subscribers are held weakly when they are bound methods, so an app (and its verifier) that goes
away does not stay subscribed.

Infrastructure, hence in core: layers from registry (access index) to sync (bridge event streams)
subscribe to it, and a publisher needs nothing from the layers that listen.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)

Notice = dict[str, Any]
Handler = Callable[[Notice], None]
# A notice with this kind means "you may have missed notices: reload from the shared store".
RESYNC = {"kind": "resync"}


class Bus:
    def __init__(self) -> None:
        self._handlers: dict[int, Callable[[], Handler | None]] = {}
        self._lock = threading.Lock()
        self._next = 0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for every notice (from any node); returns the unsubscribe function."""
        ref: Callable[[], Handler | None]
        if hasattr(handler, "__self__"):
            ref = weakref.WeakMethod(handler)  # type: ignore[arg-type]
        else:
            ref = lambda: handler  # noqa: E731 - plain functions and closures are held strongly
        with self._lock:
            self._next += 1
            token = self._next
            self._handlers[token] = ref
        self._started()
        return lambda: self._handlers.pop(token, None)  # type: ignore[func-returns-value]

    def deliver(self, notice: Notice) -> None:
        for token, ref in list(self._handlers.items()):
            handler = ref()
            if handler is None:
                self._handlers.pop(token, None)
                continue
            try:
                handler(notice)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("notice handler failed")

    def publish(self, notice: Notice) -> None:
        self.deliver(notice)

    def _started(self) -> None:
        """Hook for buses with a listener to start it on first subscription."""

    def close(self) -> None:
        self._handlers.clear()


class RedisBus(Bus):
    def __init__(self, client: redis.Redis, channel: str) -> None:
        super().__init__()
        self.client = client
        self.channel = channel
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def publish(self, notice: Notice) -> None:
        # This node applies it at once (the caller reads its own write), every node (this one again,
        # harmlessly: notices carry states, not increments) gets it from the channel in publish order.
        self.deliver(notice)
        try:
            self.client.publish(self.channel, json.dumps(notice, separators=(",", ":")))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # The change is committed: failing its request now would say it was not. Other nodes
            # pick it up from their one-second version poll (docs/architecture.md, Propagation).
            log.warning("change notice not published (Redis did not answer: %s); other nodes catch up by polling", exc)

    def _started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="idsvc-bus", daemon=True)
                self._thread.start()
        self._ready.wait(5)  # subscribed before the first publish that matters

    def _listen(self) -> None:
        first = True
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                if not first:
                    self.deliver(RESYNC)
                first = False
                self._ready.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and message["type"] == "message":
                        self.deliver(json.loads(message["data"]))
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                log.warning("notice channel lost; resubscribing")
                self._stop.wait(0.5)
            finally:
                pubsub.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        super().close()


def make_bus(client: redis.Redis | None, prefix: str) -> Bus:
    return RedisBus(client, prefix + "notices") if client is not None else Bus()
