"""A TCP proxy the test owns, put between the service and a real server to inject network faults.

The shared PostgreSQL, Redis and Mosquitto are never stopped: a test points the service at a
:class:`FaultProxy` in front of them and then

- ``blackhole()``: every connection, open or new, is accepted and kept, but nothing is forwarded
  either way (a hung server, or packets dropped by a network that still answers SYNs);
- ``cut()``: every open connection is closed and new ones are refused (a server stopped);
- ``heal()``: forward again (new connections reach the server; what was cut stays cut).

One thread accepts, one thread per direction copies; ``close()`` stops everything.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

FORWARD, BLACKHOLE, CUT = "forward", "blackhole", "cut"


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = FORWARD
        self._changed = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name=f"faultproxy-{self.port}", daemon=True)
        self._acceptor.start()

    # --- faults -------------------------------------------------------------------------------------
    def _set(self, mode: str) -> None:
        with self._changed:
            self.mode = mode
            self._changed.notify_all()

    def blackhole(self) -> None:
        self._set(BLACKHOLE)

    def heal(self) -> None:
        self._set(FORWARD)

    def cut(self) -> None:
        self._set(CUT)
        with self._changed:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)
        self._acceptor.join(5)

    # --- plumbing -----------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == CUT:
                _close(client)
                continue
            with self._changed:
                self._sockets.add(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        if not self._wait_forwarding():
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        with self._changed:
            self._sockets.add(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._copy, args=(source, sink), daemon=True).start()

    def _wait_forwarding(self) -> bool:
        """Hold a connection while black-holed; False once it should be dropped."""
        with self._changed:
            while self.mode == BLACKHOLE and not self._closed:
                self._changed.wait()
            return self.mode == FORWARD and not self._closed

    def _copy(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not self._wait_forwarding():  # black-holed: the bytes read stay here, unanswered
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


@contextmanager
def fault_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
