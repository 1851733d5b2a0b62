"""A terminal's event-number cursor in the journal: the highest event number up to which the bridge
journalled everything of the terminal, and that event's time, so that what the terminal recorded
while the bridge could not hear is fetched after a reconnect or a restart, and nothing twice.

Used by the Hikvision adapter (ISAPI ``serialNo``) and the Dahua adapter (``AccessControlCardRec``
``RecNo``). Both count up and start again after a reset or when the log wraps: an event whose
number is not above the cursor is a re-post of one already seen when its time is not after the
cursor's event, and a restarted terminal when it is (then the cursor starts again from it).

Numbers journalled beyond a gap (seen live while the ones before were missed) are kept as
``ahead`` until the gap is filled or a record search shows the missing numbers do not exist: the
journal holds everything up to ``last`` and the numbers in ``ahead``, no more, no less.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from door_firmware_bridge.journal import Journal

Place = Literal["new", "gap", "repost", "reset"]


class SerialCursor:
    """Stored in the journal's cursors table as ``<number>|<iso time>[|<ahead>,...]``
    (``|<iso time>``: no event yet, only the moment from which the terminal's events are the bridge's)."""

    def __init__(self, journal: Journal, name: str) -> None:
        self.journal = journal
        self.name = name
        self.last: int | None = None
        self.last_at: datetime | None = None
        self.ahead: set[int] = set()
        stored = journal.get_cursor(name)
        if stored:
            number, _, rest = stored.partition("|")
            at, _, ahead = rest.partition("|")
            self.last = int(number) if number else None
            self.last_at = datetime.fromisoformat(at) if at else None
            self.ahead = {int(n) for n in ahead.split(",") if n}

    def store(self) -> None:
        at = self.last_at.isoformat() if self.last_at else ""
        last = "" if self.last is None else str(self.last)
        self.journal.set_cursor(self.name, f"{last}|{at}" + (f"|{','.join(map(str, sorted(self.ahead)))}" if self.ahead else ""))

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
        """The highest number seen moves the cursor (events before a gap are fetched by the caller)."""
        if reset or self.last is None or number > self.last:
            self.last, self.last_at = number, at
            self.ahead = set()
            self.store()

    def start(self, at: datetime) -> None:
        """A terminal seen for the first time: its events from ``at`` on are the bridge's to fetch."""
        if self.last is None and self.last_at is None:
            self.last_at = at
            self.store()

    # --- exactly once: the cursor moves only over numbers with nothing missing before them -------

    def has(self, number: int) -> bool:
        return (self.last is not None and number <= self.last) or number in self.ahead

    def journalled(self, number: int, at: datetime, *, store: bool = True) -> None:
        """``number`` is in the journal now: the cursor moves over it when nothing before it is missing.
        ``store=False``: kept in memory until :meth:`store` (a record search stores once per page: each
        store is a disk sync)."""
        if self.last is None or number == self.last + 1:
            self.last, self.last_at = number, at
            self._absorb()
        elif number > self.last:
            self.ahead.add(number)
        if store:
            self.store()

    def settled(self, upto: int, at: datetime) -> None:
        """A record search answered everything up to ``upto``: numbers it did not name do not exist."""
        if self.last is None or upto > self.last:
            self.last, self.last_at = upto, max(at, self.last_at) if self.last_at else at
            self.ahead = {n for n in self.ahead if n > upto}
            self._absorb()
            self.store()

    def _absorb(self) -> None:
        assert self.last is not None
        while self.last + 1 in self.ahead:
            self.ahead.discard(self.last + 1)
            self.last += 1
