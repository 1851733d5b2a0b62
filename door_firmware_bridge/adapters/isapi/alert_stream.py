"""The terminal's event stream: ``GET /ISAPI/Event/notification/alertStream`` held open (ISAPI Face
Recognition Terminals, Pro Series §4.3.1.1 "Arming without Subscription", §5.1).

The terminal answers with an endless multipart body, one part per event (JSON or XML by its
Content-Type, pictures in their own parts) and a ``heartBeat`` event now and then. Per §4.3.1:
"when the heartbeat timed out and no message is received from the device, you should terminate the
arming connection and try establishing a new one" - so silence for twice ``heartbeat_s`` ends the
connection, and every new connection first fetches what was missed, by serial number.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from door_firmware_bridge.adapters.isapi.messages import MultipartReader, boundary_of, event_from_part
from door_firmware_bridge.adapters.isapi.terminal import Terminal

PATH = "/ISAPI/Event/notification/alertStream"


class StreamSilent(Exception):
    """No byte (not even a heartbeat) for twice the heartbeat interval."""


async def events(terminal: Terminal) -> AsyncIterator[dict[str, Any]]:
    """Events from one connection of the alert stream; ends (raises) when the connection does."""
    silence = terminal.cfg.heartbeat_s * 2
    timeout = httpx.Timeout(terminal.cfg.timeout_s, read=silence)
    async with terminal.client.stream("GET", PATH, headers={"Connection": "keep-alive"}, timeout=timeout) as answer:
        answer.raise_for_status()
        boundary = boundary_of(answer.headers.get("content-type", ""))
        if boundary is None:
            raise httpx.DecodingError("the alert stream is not multipart")
        reader = MultipartReader(boundary)
        chunks = answer.aiter_raw()
        while True:
            try:
                async with asyncio.timeout(silence):
                    chunk = await anext(chunks)
            except (TimeoutError, httpx.ReadTimeout) as exc:
                raise StreamSilent(f"nothing from {terminal.door.name} for {silence:g} s") from exc
            except StopAsyncIteration:
                return
            for headers, body in reader.feed(chunk):
                event = event_from_part(headers.get("content-type", ""), body)
                if event is not None:
                    yield event
