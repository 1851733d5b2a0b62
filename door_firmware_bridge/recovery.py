"""What a start makes of the unlocks the previous run did not finish (a crash, a SIGKILL, a power cut).

Every allow is journalled before its command, and every command is journalled (``command_sent``)
before it leaves, so the journal alone tells what may have happened at a door:

- an allow without ``command_sent``: the command never left -> ``command_result`` ``not_sent``;
- a ``command_sent`` without a result: the device may have run it -> ``command_result`` ``unknown``
  and a ``command_outcome_unknown`` alarm. The door may open for the rest of that command's pulse without a ``door_forced``
  (the supervisor is told), a late answer from the device is journalled as ``command_late_result``,
  and a lock the bridge relocks is locked once its retained state has been read.

Nothing is re-sent: a command from before a restart is void (it expired with the old process).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.journal import Entry, Journal
from door_firmware_bridge.model import new_id


@dataclass(frozen=True)
class Unfinished:
    door_id: int | None
    door: DoorConfig | None  # None: a door no longer in the config (its result is journalled all the same)
    decision_id: str | None
    cmd_id: str | None  # None: the command was never handed to the device
    action: str
    expires_at: datetime | None


def settle(journal: Journal, doors: list[DoorConfig], now: datetime) -> list[Unfinished]:
    """Journal a result for every unfinished unlock of the previous run; returns them."""
    by_id = {d.door_id: d for d in doors}
    found = [Unfinished(row.door_id, by_id.get(row.door_id or 0), row.decision_id, row.cmd_id, row.action, row.expires_at)
             for row in journal.unfinished_commands()]
    if found:
        journal.append_many([entry for u in found for entry in _entries(u, now)])
    return found


def _entries(unfinished: Unfinished, now: datetime) -> list[Entry]:
    door_id = unfinished.door_id
    common = {"cmd_id": unfinished.cmd_id, "action": unfinished.action, "decision_id": unfinished.decision_id, "lock_state": None, "detail": "bridge_restarted"}
    if unfinished.cmd_id is None:
        return [Entry(new_id(), "command_result", now, door_id, None, common | {"status": "not_sent"})]
    return [
        Entry(new_id(), "command_result", now, door_id, None, common | {"status": "unknown"}),
        Entry(new_id(), "command_outcome_unknown", now, door_id, None, {
            "cmd_id": unfinished.cmd_id, "decision_id": unfinished.decision_id, "alarm": True,
            "note": "the bridge stopped before the device answered; the door state is read again from the device",
        }),
    ]


def open_for_s(unfinished: Unfinished, now: datetime) -> float:
    """How much longer the door may legitimately be open because of this command (0: never sent or long past)."""
    door = unfinished.door
    if door is None or unfinished.cmd_id is None or unfinished.expires_at is None or unfinished.action != "pulse_unlock":
        return 0.0
    latest_end = unfinished.expires_at + timedelta(seconds=door.pulse_s + door.relock_grace_s)
    return max(0.0, (latest_end - now).total_seconds())
