"""A terminal's event-number cursor in the journal: the highest event number the bridge journalled
for it and that event's time, so that what the terminal recorded while the bridge could not hear is
fetched after a reconnect or a restart, and nothing is fetched twice.

Used by the Hikvision adapter (ISAPI ``serialNo``) and the Dahua adapter (``AccessControlCardRec``
``RecNo``). Both count up and start again after a reset or when the log wraps: an event whose
number is not above the cursor is a re-post of one already seen when its time is not after the
cursor's event, and a restarted terminal when it is (then the cursor starts again from it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from door_firmware_bridge.journal import Journal

Place = Literal["new", "gap", "repost", "reset"]


class SerialCursor:
    """Stored in the journal's cursors table as ``<number>|<iso time>`` (``|<iso time>``: no event yet,
    only the moment from which the terminal's events are the bridge's to fetch)."""

    def __init__(self, journal: Journal, name: str) -> None:
        self.journal = journal
        self.name = name
        self.last: int | None = None
        self.last_at: datetime | None = None
        stored = journal.get_cursor(name)
        if stored:
            number, _, at = stored.partition("|")
            self.last = int(number) if number else None
            self.last_at = datetime.fromisoformat(at) if at else None

    def place(self, number: int, at: datetime) -> Place:
        """Where a live event stands: ``new``, ``gap`` (events before it were missed), ``repost``
        (seen already) or ``reset`` (the terminal started counting again)."""
        last = self.last
        if last is None or number == last + 1:
            return "new"
        if number > last:
            return "gap"
        if self.last_at is not None and at > self.last_at:
            return "reset"
        return "repost"

    def saw(self, number: int, at: datetime, *, reset: bool = False) -> None:
        if reset or self.last is None or number > self.last:
            self.last, self.last_at = number, at
            self.journal.set_cursor(self.name, f"{number}|{at.isoformat()}")

    def start(self, at: datetime) -> None:
        """A terminal seen for the first time: its events from ``at`` on are the bridge's to fetch."""
        if self.last is None and self.last_at is None:
            self.last_at = at
            self.journal.set_cursor(self.name, f"|{at.isoformat()}")
