"""Deadlines for blocking socket calls that have no timeout of their own.

A database driver waiting for an answer from a server that accepted the connection and then went
silent (a hung process, a black-holed network path) waits forever: libpq's ``connect_timeout`` only
covers connecting and ``statement_timeout`` is the server's. :class:`Watchdog` holds one deadline
per armed socket and, when one passes, shuts the socket down: the blocked read returns at once, the
driver raises an error, and the caller answers "degraded" instead of holding a thread forever.
One thread serves every deadline of the process.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from contextlib import suppress

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, name: str = "idsvc-deadlines") -> None:
        self._heap: list[tuple[float, int, int]] = []  # (deadline, ticket, fd)
        self._armed: dict[int, tuple[int, str]] = {}  # ticket -> (fd, what): still armed
        self._tickets = itertools.count()
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def arm(self, fd: int, seconds: float, what: str) -> int:
        """A ticket; unless :meth:`disarm` ed within ``seconds``, the socket ``fd`` is shut down."""
        ticket = next(self._tickets)
        deadline = time.monotonic() + seconds
        with self._wake:
            self._armed[ticket] = (fd, what)
            heapq.heappush(self._heap, (deadline, ticket, fd))
            if self._heap[0][1] == ticket:
                self._wake.notify()
        return ticket

    def disarm(self, ticket: int) -> None:
        with self._wake:
            self._armed.pop(ticket, None)  # its heap entry is skipped when it comes due

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, ticket, fd = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                armed = self._armed.pop(ticket, None)
            if armed is not None:
                log.warning("%s did not answer in time: its connection is shut down", armed[1])
                _shut_down(fd)


def _shut_down(fd: int) -> None:
    """Shut the socket behind ``fd`` down for both directions (the owner's blocked read returns)."""
    with suppress(OSError):
        duplicate = socket.socket(fileno=os.dup(fd))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


_watchdog: Watchdog | None = None
_lock = threading.Lock()


def watchdog() -> Watchdog:
    """The process's watchdog, started on first use."""
    global _watchdog
    with _lock:
        if _watchdog is None:
            _watchdog = Watchdog()
        return _watchdog
