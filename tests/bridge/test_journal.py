"""The journal: durable appends with stable ids, upload marks, and pruning that never drops pending events."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from door_firmware_bridge.journal import REJECTED, UPLOADED, Journal
from door_firmware_bridge.model import utcnow


def test_entries_survive_reopening_and_only_settled_old_ones_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    old = utcnow() - timedelta(days=40)
    uploaded = journal.append("access_granted", door_id=3, data={"reasons": []}, at=old)
    rejected = journal.append("door_forced", door_id=99, at=old)
    pending_old = journal.append("command_timeout", door_id=3, at=old)
    recent = journal.append("access_denied", door_id=3, data={"reasons": ["pass_revoked"]})
    journal.mark([uploaded.event_id, recent.event_id], UPLOADED)
    journal.mark([rejected.event_id], REJECTED, "door_not_of_device")
    journal.close()

    reopened = Journal(path)  # what a restart after SIGKILL sees
    assert [e.event_id for e in reopened.pending(10)] == [pending_old.event_id]
    assert reopened.counts() == {"pending": 1, "uploaded": 2, "rejected": 1}
    assert reopened.prune_uploaded(utcnow() - timedelta(days=30)) == 2
    assert [e.event_id for e in reopened.entries()] == [pending_old.event_id, recent.event_id]
    assert reopened.entries("access_denied")[0].data == {"reasons": ["pass_revoked"]}
    reopened.close()
