"""Weekly schedules: windows of days and times in the site's local time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]


class ScheduleWindow(BaseModel):
    """Days are 0 = Monday .. 6 = Sunday; ``end`` before ``start`` means the window runs past midnight."""

    model_config = ConfigDict(extra="forbid")

    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(min_length=1, max_length=7)
    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _check(self) -> ScheduleWindow:
        if len(set(self.days)) != len(self.days):
            raise ValueError("days repeat")
        if self.start == "24:00":
            raise ValueError("a window cannot start at 24:00; start at 00:00 of the next day")
        if self.start == self.end:
            raise ValueError("start and end are the same time; omit the schedule for all day")
        return self


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def is_within(schedule: list[dict[str, Any]] | None, at: datetime, timezone: str) -> bool:
    """True when ``at`` falls inside one window of the schedule (no schedule = always)."""
    if not schedule:
        return True
    local = at.astimezone(ZoneInfo(timezone))
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    for window in schedule:
        start, end = _minutes(window["start"]), _minutes(window["end"])
        days = window["days"]
        if start < end:
            if weekday in days and start <= minute < end:
                return True
        else:  # overnight: the part after start belongs to the listed day, the part before end to the next
            if weekday in days and minute >= start:
                return True
            if (weekday - 1) % 7 in days and minute < end:
                return True
    return False
