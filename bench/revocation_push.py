"""Push latency of the candidate channels towards bridges: SSE, WebSocket, MQTT (and Redis pub/sub
between nodes, for reference), one notice at a time.

    .venv/bin/python bench/revocation_push.py [--notices 500] [--redis-url redis://127.0.0.1:6379/0] [--mqtt-port 1883]

SSE and WebSocket: a FastAPI app under uvicorn (httptools, uvloop) in a thread of this process,
fed by the service's own notice bus (idsvc.core.bus) the way idsvc/sync/api.py is; this
thread publishes a notice and times until its client has read it. MQTT: QoS 1 through the local
Mosquitto broker (publisher and subscriber both here, paho). Redis: the service's RedisBus, publish
to delivery on its listener thread. Prints p50/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import redis
import uvicorn
from fastapi import FastAPI, WebSocket
from fastapi.sse import EventSourceResponse, ServerSentEvent
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from idsvc.core.bus import Bus, Notice, RedisBus
from tests.revocation.nodes import free_port


def push_app(bus: Bus) -> FastAPI:
    app = FastAPI()

    def follow() -> tuple[asyncio.Queue[Notice], Callable[[], None]]:
        loop, inbox = asyncio.get_running_loop(), asyncio.Queue[Notice]()
        return inbox, bus.subscribe(lambda notice: loop.call_soon_threadsafe(inbox.put_nowait, notice))

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterator[ServerSentEvent]:
        inbox, unsubscribe = follow()
        try:
            yield ServerSentEvent(event="ready", data={})
            while True:
                notice = await inbox.get()
                yield ServerSentEvent(event="version", id=str(notice["version"]), data=notice)
        finally:
            unsubscribe()

    @app.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        await socket.accept()
        inbox, unsubscribe = follow()
        closed = asyncio.ensure_future(socket.receive())  # the client's close ends the loop
        try:
            await socket.send_text("ready")
            while True:
                notice = asyncio.ensure_future(inbox.get())
                await asyncio.wait({notice, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed.done():
                    notice.cancel()
                    return
                await socket.send_text(json.dumps(notice.result()))
        finally:
            unsubscribe()

    return app


def summary(label: str, values: list[float]) -> None:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"  {label:<34} p50 {statistics.median(values) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms  (n={len(values)})")


def time_sse(base: str, bus: Bus, n: int) -> list[float]:
    out = []
    with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as http, http.stream("GET", f"{base}/events") as stream:
        lines = stream.iter_lines()
        while next(lines) != "":  # the "ready" event: subscribed
            pass
        for version in range(1, n + 1):
            t0 = time.perf_counter()
            bus.publish({"version": version})
            while not next(lines).startswith("data:"):
                pass
            out.append(time.perf_counter() - t0)
    return out


def time_websocket(base: str, bus: Bus, n: int) -> list[float]:
    out = []
    with connect(base.replace("http", "ws") + "/ws") as socket:
        assert socket.recv() == "ready"
        for version in range(1, n + 1):
            t0 = time.perf_counter()
            bus.publish({"version": version})
            socket.recv()
            out.append(time.perf_counter() - t0)
    return out


def time_mqtt(port: int, n: int) -> list[float]:
    topic, received = f"idsvc-bench/{time.time_ns()}", queue.Queue[bytes]()
    subscriber, publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscriber.on_message = lambda _c, _u, message: received.put(message.payload)
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.connect("127.0.0.1", port)
    subscriber.subscribe(topic, qos=1)
    subscriber.loop_start()
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    out = []
    try:
        subscribed.wait(5)
        for version in range(1, n + 1):
            t0 = time.perf_counter()
            publisher.publish(topic, json.dumps({"version": version}), qos=1)
            received.get(timeout=5)
            out.append(time.perf_counter() - t0)
    finally:
        for client in (publisher, subscriber):
            client.loop_stop()
            client.disconnect()
    return out


def time_redis(url: str, n: int) -> list[float]:
    bus = RedisBus(redis.Redis.from_url(url), f"idsvc-bench-{time.time_ns()}:notices")
    arrived = queue.Queue[float]()
    bus.subscribe(lambda notice: arrived.put(time.perf_counter()))
    out = []
    try:
        for version in range(1, n + 1):
            t0 = time.perf_counter()
            bus.client.publish(bus.channel, json.dumps({"version": version}))  # the channel hop only, not the local delivery
            out.append(arrived.get(timeout=5) - t0)
    finally:
        bus.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=500)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    args = parser.parse_args()
    bus = Bus()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(push_app(bus), host="127.0.0.1", port=port, log_level="warning", http="httptools", loop="uvloop", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        thread.join(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        print(f"one notice at a time, {args.notices} each, publish -> read by the client:")
        summary("SSE (FastAPI EventSourceResponse)", time_sse(base, bus, args.notices))
        summary("WebSocket (FastAPI, websockets)", time_websocket(base, bus, args.notices))
        summary("MQTT QoS 1 via local Mosquitto", time_mqtt(args.mqtt_port, args.notices))
        summary("Redis pub/sub (between nodes)", time_redis(args.redis_url, args.notices))
    finally:
        server.should_exit = True
        thread.join(5)


if __name__ == "__main__":
    main()
