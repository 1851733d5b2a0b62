"""The decision for a QR at a door: identification, then the registry's grant check, then the audit."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from idsvc.audit.models import AuditEvent
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.passes import codec, issuing, keys
from idsvc.passes.models import IssuerKey
from idsvc.passes.verify import PassVerifier
from idsvc.registry.models import Status
from tests.tamper import from_another_issuer, signature_flipped
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


class _Notices:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def record(self, notice: object) -> None:  # the bus holds subscribers weakly: a bound method
        self.seen.append(notice)


def _decide_until(verifier: PassVerifier, door: int, text: str, reasons: list[str], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := verifier.decide(door, text, actor="t").reasons) != reasons:
        assert time.monotonic() < deadline, f"still {got}, expected {reasons}"
        time.sleep(0.05)


def test_revocation_reaches_other_nodes_by_polling(ctx: AppContext, other_node: AppContext, world: World, tenant_pass: issuing.IssuedPass) -> None:
    """Node 2 hears no notice and its deny set is never reloaded: only its status-list poll can deny."""
    heard = _Notices()
    other_node.bus.subscribe(heard.record)
    polling = PassVerifier(other_node, refresh_seconds=0.2)
    door = world.ids["door1"]
    assert polling.decide(door, tenant_pass.text, actor="t").allow
    with ctx.db.session() as s:
        issuing.change_status(s, OPERATOR, tenant_pass.row.id, Status.suspended, "rent dispute")
    _decide_until(polling, door, tenant_pass.text, ["pass_suspended"])
    assert heard.seen == [] and len(other_node.deny) == 0  # the status list alone said no


def test_deny_set_alone_refuses_a_revoked_pass(ctx: AppContext, other_node: AppContext, world: World, tenant_pass: issuing.IssuedPass) -> None:
    """Node 2's status list is held for an hour; its deny set's backstop reload is what denies."""
    held = PassVerifier(other_node, refresh_seconds=3600)
    door = world.ids["door1"]
    assert held.decide(door, tenant_pass.text, actor="t").allow
    with ctx.db.session() as s:
        issuing.change_status(s, OPERATOR, tenant_pass.row.id, Status.revoked, "lost phone")
    stop = other_node.deny.watch(other_node.db, interval_s=0.1)
    try:
        _decide_until(held, door, tenant_pass.text, ["pass_revoked"])
    finally:
        stop()
    assert bytes.fromhex(tenant_pass.row.pass_id) not in held._non_valid  # its status list was not read again


def test_tampered_signature_with_a_trusted_kid_and_alg_is_refused(world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    door = world.ids["door1"]
    assert verifier.decide(door, tenant_pass.text, actor="t").allow  # the genuine bytes are now remembered
    forged = signature_flipped(tenant_pass.text)
    message = codec.parse_sign1(codec.decode_text(forged))
    assert message.kid is not None and message.kid.hex() == tenant_pass.row.kid and message.alg in codec.PASS_ALGS
    denied = verifier.decide(door, forged, actor="t")
    assert not denied.allow and denied.reasons == ["signature_invalid"]


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


def test_a_retired_key_past_its_verify_until_refuses_on_its_own(ctx: AppContext, world: World, tenant_pass: issuing.IssuedPass) -> None:
    """issuer_key_expired comes from the key's own state: the deny set names only withdrawn keys."""
    with ctx.db.session() as s:
        keys.rotate(s, ctx.sealer, OPERATOR)
        old = s.scalars(select(IssuerKey).where(IssuerKey.kid == tenant_pass.row.kid)).one()
        old.verify_until = utcnow() - timedelta(minutes=1)
    fresh_node = PassVerifier(ctx, refresh_seconds=0)
    assert fresh_node.decide(world.ids["door1"], tenant_pass.text, actor="t").reasons == ["issuer_key_expired"]


def test_a_pass_from_another_issuer_under_a_trusted_key_is_refused(ctx: AppContext, world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    foreign = from_another_issuer(ctx, tenant_pass.text)
    assert verifier.decide(world.ids["door1"], foreign, actor="t").reasons == ["issuer_unknown"]


def test_an_unknown_door_is_named_in_the_refusal(world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    decision = verifier.decide(10_000_000, tenant_pass.text, actor="t")
    assert not decision.allow and "door_unknown" in decision.reasons
    no_pass = verifier.decide(10_000_000, None, actor="t")  # no holder to check a grant for: the door alone
    assert no_pass.reasons == ["door_unknown", "qr_not_found"]


def test_the_memory_of_verified_passes_stays_within_its_bound(ctx: AppContext, world: World) -> None:
    bounded = PassVerifier(ctx, refresh_seconds=0, max_cached_passes=3)
    with ctx.db.session() as s:
        texts = [issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]).text for _ in range(7)]
    held = []
    for text in texts:
        assert bounded.decide(world.ids["door1"], text, actor="t").allow
        held.append(len(bounded._known_tokens))
    assert max(held) == 3 and min(held) >= 1  # used up to its bound, never past it
