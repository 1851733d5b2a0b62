"""Defect 9 of issue 11: a grant's counted uses and its allow decisions in the audit trail never
disagree. A use is taken in the transaction that appends its decision, so a failure between the two
(a crash, the database gone) leaves both or neither; before, 995 uses had 991 decisions."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from idsvc.audit import service as audit
from idsvc.audit.models import AuditEvent
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.passes import issuing
from idsvc.registry.models import Grant
from tests.world import World


def _uses_and_allows(ctx: AppContext, world: World) -> tuple[int, int]:
    ctx.decision_log.flush()  # type: ignore[union-attr]  # denies go through the batched log
    with ctx.db.session() as s:
        uses = s.get(Grant, world.ids["grant1"]).uses  # type: ignore[union-attr]
        decisions = s.scalars(select(AuditEvent).where(AuditEvent.kind == "decision")).all()
        allows = sum(1 for e in decisions if e.data["allow"] and e.data["versions"]["grant_id"] == world.ids["grant1"])
        return uses, allows


def test_a_failed_audit_append_takes_no_use(client: TestClient, ctx: AppContext, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    with ctx.db.session() as s:
        s.get(Grant, world.ids["grant1"]).max_uses = 5  # type: ignore[union-attr]
        text = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]).text

    def verify() -> int:
        answer = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": text})
        return answer.status_code

    assert verify() == 200
    assert _uses_and_allows(ctx, world) == (1, 1)  # in the trail at once, not a quarter of a second later

    real_append = audit.append

    def crash(session, *events):  # type: ignore[no-untyped-def]
        if any(e.kind == "decision" for e in events):
            raise ConnectionError("the process died here")
        return real_append(session, *events)

    monkeypatch.setattr(audit, "append", crash)
    with pytest.raises(ConnectionError):
        verify()
    monkeypatch.setattr(audit, "append", real_append)
    assert _uses_and_allows(ctx, world) == (1, 1)  # neither the use nor the decision

    statuses = [verify() for _ in range(6)]
    assert statuses == [200] * 6
    uses, allows = _uses_and_allows(ctx, world)
    assert (uses, allows) == (5, 5)
    with ctx.db.session() as s:
        exhausted = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "decision"))
    assert exhausted == 7  # five allows and two denies (uses_exhausted), each journalled once
