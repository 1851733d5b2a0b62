"""Hikvision ISAPI event messages as they arrive: JSON, XML (``EventNotificationAlert``), single
bodies or multipart (ISAPI Face Recognition Terminals, Pro Series: §4.3 "Event Uploading", §5.1.2.3
"Event Messages Parsing"; the Traffic SDK guide's ``XML_EventNotificationAlert_ANPR``).

- Listening mode posts one event per request, as JSON, XML, or ``multipart/form-data`` with the
  event part (JSON or XML, by its Content-Type) and picture parts.
- The alert stream (``GET /ISAPI/Event/notification/alertStream``) is one endless multipart body:
  :class:`MultipartReader` cuts it into parts as bytes arrive (Content-Length when given, else the
  next boundary), never holding more than one part.

XML is parsed with defusedxml (no entity expansion: the bodies come from the network) and turned
into the same dict shape as the JSON events, so one interpreter serves both. Text stays text: a
picture name of 40 digits is a string, never a number.
"""

from __future__ import annotations

import json
from typing import Any

import defusedxml.ElementTree as SafeXML

MAX_PART_BYTES = 2 * 1024 * 1024
NUMERIC_FIELDS = {"serialNo", "confidenceLevel", "majorEventType", "subEventType", "major", "minor", "activePostCount", "channelID", "portNo"}


class MultipartReader:
    """Parts of a multipart body, fed in chunks: ``feed`` returns the (headers, body) completed so far."""

    def __init__(self, boundary: str) -> None:
        self.delimiter = b"--" + boundary.encode()
        self.buffer = b""

    def feed(self, chunk: bytes) -> list[tuple[dict[str, str], bytes]]:
        self.buffer += chunk
        parts = []
        while True:
            start = self.buffer.find(self.delimiter)
            if start < 0:
                self.buffer = self.buffer[-len(self.delimiter):]  # keep what could be a boundary's start
                return parts
            head_end = self.buffer.find(b"\r\n\r\n", start)
            if head_end < 0:
                if len(self.buffer) - start > 16 * 1024:  # headers never get this long: resynchronise
                    self.buffer = self.buffer[start + len(self.delimiter):]
                    continue
                return parts
            headers = _headers(self.buffer[start + len(self.delimiter):head_end])
            body_start = head_end + 4
            length = headers.get("content-length", "")
            if length.isdigit():
                end = body_start + int(length)
                if len(self.buffer) < end:
                    return parts
                body = self.buffer[body_start:end]
            else:
                end = self.buffer.find(self.delimiter, body_start)
                if end < 0:
                    if len(self.buffer) - body_start > MAX_PART_BYTES:
                        self.buffer = self.buffer[body_start:]  # a part too large to be an event: skip it
                    return parts
                body = self.buffer[body_start:end].rstrip(b"\r\n")
            self.buffer = self.buffer[end:]
            if len(body) <= MAX_PART_BYTES:
                parts.append((headers, body))


def _headers(block: bytes) -> dict[str, str]:
    headers = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def boundary_of(content_type: str) -> str | None:
    for item in content_type.split(";"):
        name, _, value = item.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    return None


def event_from_part(content_type: str, body: bytes) -> dict[str, Any] | None:
    """One event (dict) from a JSON or XML body; None for pictures and anything unreadable."""
    text = body.strip()
    if not text or "image" in content_type:
        return None
    if text.startswith(b"<"):
        return event_from_xml(text)
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def events_from_body(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """The events of one posted body (listening mode): a single JSON/XML body or a multipart form."""
    boundary = boundary_of(content_type) if content_type.startswith("multipart/") else None
    if boundary is None:
        event = event_from_part(content_type, body)
        return [event] if event is not None else []
    reader = MultipartReader(boundary)
    parts = reader.feed(body + b"\r\n--" + boundary.encode())  # a final delimiter closes the last part
    return [e for headers, part in parts if (e := event_from_part(headers.get("content-type", ""), part)) is not None]


def event_from_xml(text: bytes) -> dict[str, Any] | None:
    """``<EventNotificationAlert>`` as the JSON events are shaped: ``{"eventType": ..., "ANPR": {...}}``."""
    try:
        root = SafeXML.fromstring(text)
    except (SafeXML.ParseError, ValueError):  # defusedxml refuses entities and DTDs with ValueError subclasses
        return None
    if _local(root.tag) != "EventNotificationAlert":
        return None
    value = _element(root)
    return value if isinstance(value, dict) else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # drop the namespace (xmlns="http://www.isapi.org/ver20/XMLSchema")


def _element(element: Any) -> Any:
    children = list(element)
    if not children:
        text = (element.text or "").strip()
        name = _local(element.tag)
        if name in NUMERIC_FIELDS and text.lstrip("-").isdigit():
            return int(text)
        if text in ("true", "false"):
            return text == "true"
        return text
    out: dict[str, Any] = {}
    for child in children:
        name, value = _local(child.tag), _element(child)
        if name in out:  # repeated elements become a list
            out[name] = out[name] if isinstance(out[name], list) else [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out
