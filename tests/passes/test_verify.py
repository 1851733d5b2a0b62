"""The decision for a QR at a door: identification, then the registry's grant check, then the audit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from idsvc.audit.models import AuditEvent
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.passes import codec, issuing, keys
from idsvc.passes.verify import PassVerifier
from idsvc.registry.models import Status
from tests.world import World


def test_tenant_pass_opens_own_flat_and_entrance_but_not_neighbours(ctx: AppContext, world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    text = tenant_pass.text
    assert text.startswith("NH1:")
    own = verifier.decide(world.ids["door1"], text, actor="test")
    assert own.allow and own.reasons == []
    assert own.versions["grant_id"] == world.ids["grant1"]
    assert own.versions["trust_list"] >= 1
    neighbour = verifier.decide(world.ids["door2"], text, actor="test")
    assert not neighbour.allow and neighbour.reasons == ["no_grant_for_door"]
    other_site = verifier.decide(world.ids["entrance_b"], text, actor="test")
    assert other_site.reasons == ["subject_other_site"]


def test_every_decision_is_an_audit_event(ctx: AppContext, world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    decision = verifier.decide(world.ids["door1"], tenant_pass.text, actor="device:7")
    with ctx.db.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "decision")).one()
    assert event.door_id == world.ids["door1"]
    assert event.person_id == world.ids["tenant1"]
    assert event.unit_id == world.ids["unit1"]
    assert event.actor == "device:7"
    assert event.data["decision_id"] == decision.decision_id and event.data["allow"] is True


def test_expired_and_not_yet_valid(world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    door = world.ids["door1"]
    late = verifier.decide(door, tenant_pass.text, actor="t", at=utcnow() + timedelta(days=8))
    assert "pass_expired" in late.reasons and not late.allow
    early = verifier.decide(door, tenant_pass.text, actor="t", at=utcnow() - timedelta(hours=1))
    assert "pass_not_yet_valid" in early.reasons


def test_revocation_takes_effect_at_once(ctx: AppContext, world: World, tenant_pass: issuing.IssuedPass) -> None:
    verifier = PassVerifier(ctx, refresh_seconds=3600)  # no polling: the change must reach it by invalidate()
    assert verifier.decide(world.ids["door1"], tenant_pass.text, actor="t").allow
    with ctx.db.session() as s:
        issuing.change_status(s, OPERATOR, tenant_pass.row.id, Status.revoked, "lost phone")
    verifier.invalidate()
    denied = verifier.decide(world.ids["door1"], tenant_pass.text, actor="t")
    assert denied.reasons == ["pass_revoked"]
    assert denied.versions["status_list"] == 1


def test_revocation_reaches_other_nodes_by_polling(ctx: AppContext, world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    assert verifier.decide(world.ids["door1"], tenant_pass.text, actor="t").allow
    with ctx.db.session() as s:
        issuing.change_status(s, OPERATOR, tenant_pass.row.id, Status.suspended, "rent dispute")
    assert verifier.decide(world.ids["door1"], tenant_pass.text, actor="t").reasons == ["pass_suspended"]


def test_rotation_keeps_old_passes_and_withdrawal_kills_them(ctx: AppContext, world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    with ctx.db.session() as s:
        new_key = keys.rotate(s, ctx.sealer, OPERATOR)
        fresh = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])
    assert fresh.row.kid == new_key.kid != tenant_pass.row.kid
    assert verifier.decide(world.ids["door1"], tenant_pass.text, actor="t").allow
    assert verifier.decide(world.ids["door1"], fresh.text, actor="t").allow
    with ctx.db.session() as s:
        keys.withdraw(s, tenant_pass.row.kid, OPERATOR, "key leaked")
    assert verifier.decide(world.ids["door1"], tenant_pass.text, actor="t").reasons == ["issuer_key_withdrawn"]
    assert verifier.decide(world.ids["door1"], fresh.text, actor="t").allow


def test_ended_tenancy_denies_even_with_a_valid_pass(ctx: AppContext, world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    from idsvc.registry import units

    with ctx.db.session() as s:
        units.end_tenancy(s, OPERATOR, world.ids["unit1"], world.ids["tenant1"], "moved out")
    decision = verifier.decide(world.ids["door1"], tenant_pass.text, actor="t")
    assert not decision.allow and decision.reasons and all(r.startswith("grant_") for r in decision.reasons)


def test_es256_issuer_key(ctx: AppContext, world: World, verifier: PassVerifier) -> None:
    with ctx.db.session() as s:
        key = keys.rotate(s, ctx.sealer, OPERATOR, codec.ALG_ES256)
        issued = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"])
    assert key.alg == codec.ALG_ES256 and issued.row.kid == key.kid
    assert codec.parse_sign1(codec.decode_text(issued.text)).alg == codec.ALG_ES256
    assert verifier.decide(world.ids["door1"], issued.text, actor="t").allow
