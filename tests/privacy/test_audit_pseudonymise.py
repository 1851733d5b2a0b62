"""The chain hashes a salted commitment to each event's personal fields: editing them is found while
they are held, and pseudonymising them (recorded in the chain) keeps the chain verifying."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from sqlalchemy import select, update

from idsvc.audit import service as audit
from idsvc.audit.models import AuditEvent
from idsvc.audit.pseudonymise import pseudonymise
from idsvc.context import AppContext


def _names(ids: Iterable[int]) -> dict[int, str]:
    return {i: f"p{i:04d}" for i in ids}


@pytest.fixture
def trail(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        audit.append(
            s,
            audit.NewEvent(kind="grant.revoked", actor="person:2", person_id=7, site_id=1, entity_type="grant", entity_id=3, data={"reason": "Wang moved out", "n": 1}),
            audit.NewEvent(kind="person.created", actor="key:1", person_id=7, site_id=1, entity_type="person", entity_id=7, data={"kind": "tenant"}),
            audit.NewEvent(kind="decision", actor="device:1", person_id=7, site_id=1, door_id=4, data={"allow": True, "reasons": []}),
            audit.NewEvent(kind="site.updated", actor="key:1", site_id=1, data={"name": ["A", "B"]}),
            audit.NewEvent(kind="decision", actor="device:1", person_id=8, site_id=1, door_id=4, data={"allow": False, "plate": "粤B12345"}),
        )


def _verify(ctx: AppContext) -> audit.VerifyReport:
    with ctx.db.session() as s:
        return audit.verify(s)


def _edit(ctx: AppContext, seq: int, **values: object) -> None:
    with ctx.db.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(**values))


@pytest.mark.usefixtures("trail")
@pytest.mark.parametrize(
    ("seq", "values"),
    [
        (1, {"person_id": 8}),
        (1, {"actor": "person:3"}),
        (1, {"data": {"reason": "forged", "n": 1}}),
        (2, {"entity_id": 8}),
        (4, {"person_id": 7}),  # a person added to an event that named nobody
        (5, {"data": {"allow": False, "plate": "粤B99999"}}),
    ],
)
def test_editing_a_personal_field_is_found(ctx: AppContext, seq: int, values: dict[str, object]) -> None:
    assert _verify(ctx).ok
    _edit(ctx, seq, **values)
    report = _verify(ctx)
    assert not report.ok and any(f"event {seq}:" in p and "edited" in p for p in report.problems), report.problems


@pytest.mark.usefixtures("trail")
def test_pseudonymised_events_still_verify_and_name_nobody(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        changed = pseudonymise(s, audit.NewEvent(kind="person.erased", actor="operator", site_id=1), (AuditEvent.person_id == 7) | (AuditEvent.actor == "person:7"), _names)
    assert changed == 3
    report = _verify(ctx)
    assert report.ok, report.problems
    assert report.events_pseudonymised == 3
    with ctx.db.session() as s:
        rows = {e.seq: e for e in s.scalars(select(AuditEvent))}
    record = rows[6]
    assert record.kind == "person.erased" and record.data["events_pseudonymised"] == 3
    for seq in (1, 2, 3):
        row = rows[seq]
        assert row.person_id is None and row.subject == "p0007" and row.personal_salt is None and row.pseudonymised_in == 6
    assert rows[1].actor == "pseudonym:p0002" and "reason" not in rows[1].data and rows[1].data["n"] == 1
    assert rows[2].entity_id is None
    assert rows[5].person_id == 8 and rows[5].personal_salt is not None  # someone else's event: untouched


@pytest.mark.usefixtures("trail")
def test_a_pseudonymisation_without_a_record_is_found(ctx: AppContext) -> None:
    """Deleting the salt and the person by hand to hide who it was looks like an edit, not an erasure."""
    _edit(ctx, 3, personal_salt=None, person_id=None, subject="p9999")
    report = _verify(ctx)
    assert not report.ok and any("event 3: commitment without its salt" in p for p in report.problems)


@pytest.mark.usefixtures("trail")
def test_pseudonymising_more_than_the_record_says_is_found(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        pseudonymise(s, audit.NewEvent(kind="person.erased", actor="operator"), AuditEvent.person_id == 8, _names)
    assert _verify(ctx).ok
    _edit(ctx, 3, personal_salt=None, person_id=None, subject="p9999", pseudonymised_in=6)  # smuggled under record 6
    report = _verify(ctx)
    assert not report.ok and any("event 6 records 1 pseudonymised events but 2 carry its mark" in p for p in report.problems), report.problems


@pytest.mark.usefixtures("trail")
def test_pseudonymising_in_batches_records_each_batch(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        first = pseudonymise(s, audit.NewEvent(kind="audit.pseudonymised", actor="system:retention"), AuditEvent.kind == "decision", _names, limit=1)
    with ctx.db.session() as s:
        second = pseudonymise(s, audit.NewEvent(kind="audit.pseudonymised", actor="system:retention"), AuditEvent.kind == "decision", _names, limit=1)
    with ctx.db.session() as s:
        third = pseudonymise(s, audit.NewEvent(kind="audit.pseudonymised", actor="system:retention"), AuditEvent.kind == "decision", _names, limit=1)
    assert (first, second, third) == (1, 1, 0)  # nothing left: no empty record appended
    report = _verify(ctx)
    assert report.ok and report.events_checked == 7 and report.events_pseudonymised == 2
