"""The app served by uvicorn on a real socket, in a thread of the test process, with the options of `idsvc serve`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from idsvc.app import create_app
from idsvc.context import AppContext
from idsvc.core.http_server import uvicorn_options


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(ctx: AppContext) -> Iterator[str]:
    """The base URL of the app on ``ctx``, served until the block ends."""
    port = free_port()
    # loop="asyncio": uvicorn must not install uvloop for the whole test process.
    config = uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="asyncio", **uvicorn_options(ctx.settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the served app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
