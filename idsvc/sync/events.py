"""Reading the feed's event stream (text/event-stream) on the bridge side: lines in, versions out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator


class VersionParser:
    """Feed one line at a time; a blank line ends an event and returns its version, if it had one."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}

    def line(self, line: str) -> int | None:
        if line:
            if not line.startswith(":"):  # ":" lines are comments and keep-alive pings
                name, _, value = line.partition(":")
                self._fields[name] = value.removeprefix(" ")
            return None
        fields, self._fields = self._fields, {}
        if fields.get("event") == "version" and "data" in fields:
            return int(json.loads(fields["data"])["version"])
        return None


def versions(lines: Iterable[str]) -> Iterator[int]:
    parser = VersionParser()
    for line in lines:
        if (found := parser.line(line)) is not None:
            yield found


async def aversions(lines: AsyncIterable[str]) -> AsyncIterator[int]:
    """For ``httpx.AsyncClient.stream(...).aiter_lines()``."""
    parser = VersionParser()
    async for line in lines:
        if (found := parser.line(line)) is not None:
            yield found
