"""Migration 0006 moves an existing trail to hash scheme 2 and says so in the chain: the scheme-1
head it replaced, how many events, and what the scheme-1 check found (the +08:00 defect repaired,
real edits kept on record)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from idsvc.audit import chain
from idsvc.audit import service as audit
from idsvc.audit.models import AuditEvent
from idsvc.audit.rehash import scheme1_hash
from idsvc.core.db import Database, UTCDateTime
from idsvc.db.migrate import upgrade
from tests.privacy.databases import fresh_database

_events = sa.table(
    "audit_events", *(sa.column(c) for c in ("seq", "kind", "actor", "site_id", "unit_id", "door_id", "person_id", "entity_type", "entity_id", "prev_hash", "hash")),
    sa.column("at", UTCDateTime()), sa.column("data", sa.JSON),
)
_head = sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash"))
SHANGHAI = timezone(timedelta(hours=8))


def _legacy_trail(url: str, edit_seq: int | None = None) -> tuple[int, str]:
    """Five events hashed the way scheme 1 did (at.isoformat() of the time as appended); event 3 a
    terminal's +08:00 time. Returns the scheme-1 head."""
    engine = sa.create_engine(url)
    prev, rows = chain.GENESIS_HASH, []
    base = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    for seq in range(1, 6):
        at = base + timedelta(hours=seq) if seq != 3 else datetime(2026, 12, 1, 18, 0, tzinfo=SHANGHAI)
        row: dict[str, Any] = {
            "seq": seq, "at": at, "kind": "device.access_granted" if seq == 3 else "grant.revoked", "actor": f"person:{seq}",
            "site_id": 1, "unit_id": None, "door_id": None, "person_id": 10 + seq, "entity_type": "grant", "entity_id": seq,
            "data": {"reason": f"moved out {seq}", "n": seq},
        }
        row["prev_hash"], row["hash"] = prev, scheme1_hash(prev, SimpleNamespace(**row), at.isoformat())
        prev = row["hash"]
        rows.append(row)
    with engine.begin() as connection:
        connection.execute(_events.insert(), rows)
        connection.execute(_head.update().where(_head.c.id == 1).values(seq=5, hash=prev))
        if edit_seq is not None:
            connection.execute(_events.update().where(_events.c.seq == edit_seq).values(data={"reason": "forged", "n": edit_seq}))
    engine.dispose()
    return 5, prev


def _rehashed(url: str) -> tuple[audit.VerifyReport, AuditEvent, list[AuditEvent]]:
    db = Database(url)
    try:
        with db.session() as s:
            report = audit.verify(s)
            events = list(s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)))
        return report, events[-1], events[:-1]
    finally:
        db.dispose()


def test_a_scheme_1_trail_is_rehashed_and_the_rehash_is_on_record(tmp_path: Path) -> None:
    with fresh_database(tmp_path) as url:
        upgrade(url, "0001_foundation")
        legacy_head = _legacy_trail(url)
        upgrade(url)
        report, record, events = _rehashed(url)
        assert report.ok, report.problems
        assert report.events_checked == 6
        assert record.kind == "audit.rehashed" and record.seq == 6 and record.actor == "system:migration"
        assert record.data["legacy_head"] == {"seq": legacy_head[0], "hash": legacy_head[1]}
        check = record.data["legacy_check"]
        # The +08:00 event failed scheme 1 through no edit: repaired, not reported as tampering.
        assert check["ok"] is True and check["offset_repaired"] == 1 and check["offset_repaired_first"] == [3]
        assert all(e.personal_salt is not None and e.personal_digest for e in events)  # ready for erasure


@pytest.mark.parametrize("edited", [2, 5])
def test_an_edit_made_before_the_upgrade_stays_on_record(tmp_path: Path, edited: int) -> None:
    """Re-hashing must not launder an edit: the scheme-1 check's finding is written into the chain."""
    with fresh_database(tmp_path) as url:
        upgrade(url, "0001_foundation")
        _legacy_trail(url, edit_seq=edited)
        upgrade(url)
        report, record, _ = _rehashed(url)
        assert report.ok  # the new chain is consistent ...
        check = record.data["legacy_check"]
        assert check["ok"] is False and check["problems"] == 1  # ... and says what was wrong before it
        assert check["first_problems"] == [f"event {edited}: content did not match its scheme-1 hash"]


def test_an_empty_trail_needs_no_record(tmp_path: Path) -> None:
    with fresh_database(tmp_path) as url:
        upgrade(url)
        db = Database(url)
        with db.session() as s:
            assert audit.chain_head(s) == (0, chain.GENESIS_HASH)
        db.dispose()
