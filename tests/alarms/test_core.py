"""The alarm core: one active alarm per (source, type), repeats, held conditions, notices, audit."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from idsvc.alarms import service
from idsvc.alarms.models import Alarm, AlarmCondition, Severity
from idsvc.audit.models import AuditEvent
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from tests.alarms.conftest import Recorder


def _signal(source: str = "sensor:1", type_: str = "smoke", at=None, **kw) -> service.Signal:  # type: ignore[no-untyped-def]
    return service.Signal(source=source, type=type_, site_id=1, at=at or utcnow(), **kw)


def test_a_repeat_counts_on_the_active_alarm_and_only_the_raise_is_audited(ctx: AppContext, recorder: Recorder) -> None:
    t0 = utcnow()
    with ctx.db.session() as s:
        first, created = service.raise_alarm(s, ctx.bus, _signal(at=t0, data={"n": 1}), "sensor:1")
    assert created and first.count == 1 and first.severity is Severity.critical
    with ctx.db.session() as s:
        again, created = service.raise_alarm(s, ctx.bus, _signal(at=t0 + timedelta(seconds=5), data={"n": 2}), "sensor:1")
        older, _ = service.raise_alarm(s, ctx.bus, _signal(at=t0 - timedelta(seconds=5), data={"n": 0}), "sensor:1")  # a backlog
    assert not created and again.id == first.id
    assert (older.count, older.last_at, older.first_at, older.data) == (3, t0 + timedelta(seconds=5), t0 - timedelta(seconds=5), {"n": 2})
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alarm)) == 1
        assert [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.entity_type == "alarm"))] == ["alarm.raised"]
    assert recorder.events() == [("raised", "smoke", 1), ("repeated", "smoke", 2), ("repeated", "smoke", 3)]


def test_the_database_refuses_a_second_active_alarm_of_one_source_and_type(ctx: AppContext) -> None:
    row = {"source": "door:1", "type": "door_forced", "severity": "critical", "site_id": 1, "first_at": utcnow(), "last_at": utcnow(), "count": 1, "data": {}}
    with ctx.db.session() as s:
        s.execute(insert(Alarm), [row])
    with pytest.raises(IntegrityError), ctx.db.session() as s:
        s.execute(insert(Alarm), [row])
    with ctx.db.session() as s:  # a cleared one does not count: a new active one may follow it
        s.execute(Alarm.__table__.update().values(cleared_at=utcnow()))
        s.execute(insert(Alarm), [row])
        assert s.scalar(select(func.count()).select_from(Alarm)) == 2


def test_writers_racing_on_one_source_make_one_alarm(ctx: AppContext) -> None:
    n = 8
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def raise_one() -> None:
        try:
            barrier.wait()
            with ctx.db.session() as s:
                service.raise_alarm(s, ctx.bus, _signal(source="door:9", type_="door_forced"), "device:1")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=raise_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with ctx.db.session() as s:
        alarms = s.scalars(select(Alarm)).all()
    assert [(a.source, a.count) for a in alarms] == [("door:9", n)]


def test_a_condition_shorter_than_its_hold_raises_nothing_and_a_held_one_raises_once(ctx: AppContext, recorder: Recorder) -> None:
    t0 = utcnow() - timedelta(seconds=100)
    gas = lambda at: _signal(source="sensor:2", type_="gas_concentration_high", at=at)  # noqa: E731
    with ctx.db.session() as s:
        assert service.observe(s, ctx.bus, gas(t0), "x", hold_s=30) is None
        assert service.observe(s, ctx.bus, gas(t0 + timedelta(seconds=20)), "x", hold_s=30) is None
        service.normal(s, ctx.bus, "sensor:2", ["gas_concentration_high"], t0 + timedelta(seconds=25))  # back below: forgotten
        assert service.observe(s, ctx.bus, gas(t0 + timedelta(seconds=40)), "x", hold_s=30) is None  # a new condition starts here
    with ctx.db.session() as s:
        assert service.sweep_conditions(s, ctx.bus, t0 + timedelta(seconds=60)) == []  # held 20 s of 30
    assert recorder.events() == []
    # A restart: nothing in memory is needed, the condition is in the database.
    with ctx.db.session() as s:
        assert [(c.type, c.count, c.raised) for c in service.condition_rows(s, "sensor:2")] == [("gas_concentration_high", 1, False)]
        raised = service.sweep_conditions(s, ctx.bus, t0 + timedelta(seconds=71))
    assert [a.type for a in raised] == ["gas_concentration_high"]
    with ctx.db.session() as s:
        assert service.sweep_conditions(s, ctx.bus, t0 + timedelta(seconds=99)) == []  # claimed: never twice
        alarm = service.observe(s, ctx.bus, gas(t0 + timedelta(seconds=80)), "x", hold_s=30)  # still high: a repeat
    assert alarm is not None and alarm.count == 2
    assert recorder.events() == [("raised", "gas_concentration_high", 1), ("repeated", "gas_concentration_high", 2)]


def test_a_condition_needing_repeats_raises_on_the_nth(ctx: AppContext) -> None:
    t0 = utcnow()
    with ctx.db.session() as s:
        results = [service.observe(s, ctx.bus, _signal(source="sensor:3", type_="residual_current_high", at=t0 + timedelta(seconds=i)), "x", repeats=3) for i in range(3)]
    assert [r is not None for r in results] == [False, False, True]


def test_normal_clears_by_the_source_and_a_new_occurrence_is_a_new_alarm(ctx: AppContext, recorder: Recorder) -> None:
    with ctx.db.session() as s:
        first, _ = service.raise_alarm(s, ctx.bus, _signal(source="door:4", type_="device_offline"), "device:1")
    with ctx.db.session() as s:
        cleared = service.normal(s, ctx.bus, "door:4", ["device_offline"], utcnow(), reason="device_online")
    assert [(a.id, a.cleared_by, a.clear_reason) for a in cleared] == [(first.id, "system", "device_online")]
    with ctx.db.session() as s:
        second, created = service.raise_alarm(s, ctx.bus, _signal(source="door:4", type_="device_offline"), "device:1")
        kinds = [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.entity_type == "alarm").order_by(AuditEvent.seq))]
    assert created and second.id != first.id
    assert kinds == ["alarm.raised", "alarm.cleared", "alarm.raised"]
    assert [e for e, _, _ in recorder.events()] == ["raised", "cleared", "raised"]


def test_notices_leave_only_after_commit(ctx: AppContext, recorder: Recorder) -> None:
    with pytest.raises(RuntimeError), ctx.db.session() as s:
        service.raise_alarm(s, ctx.bus, _signal(), "x")
        raise RuntimeError("rolled back")
    assert recorder.events() == []
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AlarmCondition)) == 0
        assert s.scalar(select(func.count()).select_from(Alarm)) == 0
