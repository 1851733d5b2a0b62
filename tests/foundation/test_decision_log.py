"""Batched decision events: journalled first, written in batches, replayed once after a crash."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from idsvc.audit import service as audit
from idsvc.audit.decision_log import DecisionLog, _to_line
from idsvc.audit.models import AuditEvent
from idsvc.context import AppContext
from idsvc.core.db import Database, utcnow
from tests.world import World


def _event(door_id: int = 1) -> audit.NewEvent:
    return audit.NewEvent(kind="decision", actor="device:1", at=utcnow(), door_id=door_id, data={"decision_id": uuid.uuid4().hex, "allow": False})


def _decision_ids(ctx: AppContext) -> list[str]:
    with ctx.db.session() as s:
        return [e.data["decision_id"] for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "decision").order_by(AuditEvent.seq))]


def test_events_reach_the_trail_on_flush_and_the_journal_empties(ctx: AppContext, tmp_path: Path) -> None:
    log = DecisionLog(ctx.db, tmp_path, interval=3600, batch=10_000)  # only explicit flushes write
    events = [_event() for _ in range(3)]
    for event in events:
        log.submit(event)
    journal = next(tmp_path.glob("decisions-*.journal"))
    assert len(journal.read_bytes().splitlines()) == 3
    log.flush()
    assert _decision_ids(ctx) == [e.data["decision_id"] for e in events]
    assert not journal.exists()  # written: its segment is gone, new decisions go to a fresh one
    assert b"".join(p.read_bytes() for p in tmp_path.glob("decisions-*.journal")) == b""
    log.close()
    assert list(tmp_path.glob("decisions-*.journal")) == []


def test_flush_waits_for_a_batch_the_writer_is_writing(ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers rely on flush (an erasure, shutdown, tests): decisions the background writer already
    took must be in the trail when it returns, not still on their way."""
    import threading
    import time

    from idsvc.audit import decision_log

    writing = threading.Event()
    real_append = decision_log.audit.append

    def slow_append(session, *events):  # type: ignore[no-untyped-def]
        writing.set()
        time.sleep(0.5)
        return real_append(session, *events)

    monkeypatch.setattr(decision_log.audit, "append", slow_append)
    log = DecisionLog(ctx.db, tmp_path, interval=0.01, batch=10_000)
    event = _event()
    log.submit(event)
    assert writing.wait(5)  # the writer has the batch and is writing it
    log.flush()
    assert _decision_ids(ctx) == [event.data["decision_id"]]
    log.close()


def test_journal_of_a_dead_process_is_replayed_once(ctx: AppContext, tmp_path: Path) -> None:
    already, lost = _event(), [_event(), _event()]
    with ctx.db.session() as s:
        audit.append(s, already)  # written just before the crash, journal not yet emptied
    (tmp_path / "decisions-999999-dead.journal").write_bytes(b"".join(_to_line(e) for e in [already, *lost]))
    log = DecisionLog(ctx.db, tmp_path)
    log.close()
    assert _decision_ids(ctx) == [e.data["decision_id"] for e in [already, *lost]]
    assert list(tmp_path.glob("decisions-999999-*")) == []
    with ctx.db.session() as s:
        assert audit.verify(s).ok


def test_a_live_process_journal_is_left_alone(ctx: AppContext, tmp_path: Path) -> None:
    alive = DecisionLog(ctx.db, tmp_path, interval=3600, batch=10_000)
    alive.submit(_event())
    other = DecisionLog(ctx.db, tmp_path)
    assert _decision_ids(ctx) == []  # not replayed by `other`: its owner holds the lock
    other.close()
    alive.close()
    assert len(_decision_ids(ctx)) == 1


def test_device_decisions_through_the_api_are_audited(ctx: AppContext, world: World) -> None:
    from idsvc.app import create_app

    with TestClient(create_app(ctx)) as client:
        text = client.post(f"/v1/people/{world.ids['tenant1']}/passes", json={}, headers=world.auth("tenant1")).json()["qr_text"]
        ids = [
            client.post("/v1/device/verify", json={"door_id": world.ids["door1"], "qr_text": text}, headers=world.auth("device1")).json()["decision_id"]
            for _ in range(5)
        ]
    # Leaving the client ran the app's shutdown, which flushes the log.
    assert _decision_ids(ctx) == ids
    with ctx.db.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "decision")).first()
        assert event is not None and (event.door_id, event.person_id, event.unit_id) == (world.ids["door1"], world.ids["tenant1"], world.ids["unit1"])


def test_trail_unreachable_keeps_events_for_the_next_start(ctx: AppContext, tmp_path: Path) -> None:
    down = Database(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")  # cannot even be opened
    broken = DecisionLog(down, tmp_path, interval=3600, batch=10_000)
    event = _event()
    broken.submit(event)
    with pytest.raises(OperationalError):
        broken.flush()
    broken.close()  # logs the failure, keeps the journal, releases its lock
    down.dispose()
    DecisionLog(ctx.db, tmp_path).close()  # the next start replays it
    assert _decision_ids(ctx) == [event.data["decision_id"]]
