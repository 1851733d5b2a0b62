"""Phone-bound passes: 30-second steps, +-1 step, one use per (pass, step, door), holder signature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cbor2
import pytest

from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.passes import codec, dynamic, issuing
from idsvc.passes.verify import PassVerifier
from tests.tamper import resigned
from tests.world import World


@pytest.fixture
def holder() -> dynamic.Holder:
    return dynamic.Holder()


@pytest.fixture
def bound_pass(ctx: AppContext, world: World, holder: dynamic.Holder) -> issuing.IssuedPass:
    with ctx.db.session() as s:
        return issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"], holder_public_key=holder.public_key)


def test_fresh_presentation_opens_once(world: World, verifier: PassVerifier, holder: dynamic.Holder, bound_pass: issuing.IssuedPass) -> None:
    door = world.ids["door1"]
    shown = holder.present(bound_pass.text, door_id=door)
    first = verifier.decide(door, shown, actor="t")
    assert first.allow and first.presentation == "dynamic"
    assert verifier.decide(door, shown, actor="t").reasons == ["presentation_replayed"]


def test_static_picture_of_a_bound_pass_is_refused(world: World, verifier: PassVerifier, bound_pass: issuing.IssuedPass) -> None:
    assert verifier.decide(world.ids["door1"], bound_pass.text, actor="t").reasons == ["presentation_required"]


def test_steps_either_side_are_accepted_and_older_ones_are_stale(world: World, verifier: PassVerifier, holder: dynamic.Holder, bound_pass: issuing.IssuedPass) -> None:
    door, now = world.ids["door1"], utcnow()
    step = timedelta(seconds=dynamic.STEP_SECONDS)
    assert verifier.decide(door, holder.present(bound_pass.text, at=now - step), actor="t").allow
    assert verifier.decide(door, holder.present(bound_pass.text, at=now + step), actor="t").allow
    assert verifier.decide(door, holder.present(bound_pass.text, at=now - 3 * step), actor="t").reasons == ["presentation_stale"]
    assert verifier.decide(door, holder.present(bound_pass.text, at=now + 3 * step), actor="t").reasons == ["presentation_from_future"]
    # The window is exactly one step each side: two steps off is already refused.
    assert verifier.decide(door, holder.present(bound_pass.text, at=now - 2 * step), actor="t", at=now).reasons == ["presentation_stale"]
    assert verifier.decide(door, holder.present(bound_pass.text, at=now + 2 * step), actor="t", at=now).reasons == ["presentation_from_future"]


def test_presentation_for_another_door_or_by_another_phone(world: World, verifier: PassVerifier, holder: dynamic.Holder, bound_pass: issuing.IssuedPass) -> None:
    shown_elsewhere = holder.present(bound_pass.text, door_id=world.ids["entrance_a"])
    assert verifier.decide(world.ids["door1"], shown_elsewhere, actor="t").reasons == ["presentation_other_door"]
    thief = dynamic.Holder()
    assert verifier.decide(world.ids["door1"], thief.present(bound_pass.text), actor="t").reasons == ["presentation_signature_invalid"]


def test_same_step_at_two_doors_is_two_uses(world: World, verifier: PassVerifier, holder: dynamic.Holder, bound_pass: issuing.IssuedPass) -> None:
    shown = holder.present(bound_pass.text)  # no door: the reader did not say which
    assert verifier.decide(world.ids["door1"], shown, actor="t").allow
    assert verifier.decide(world.ids["entrance_a"], shown, actor="t").allow  # the unit's group holds its entrance
    assert verifier.decide(world.ids["door1"], shown, actor="t").reasons == ["presentation_replayed"]


def test_reader_challenge(world: World, verifier: PassVerifier, holder: dynamic.Holder, bound_pass: issuing.IssuedPass) -> None:
    door = world.ids["door1"]
    shown = holder.present(bound_pass.text, challenge=b"nonce-1")
    assert verifier.decide(door, shown, actor="t", challenge=b"nonce-2").reasons == ["presentation_challenge_mismatch"]
    assert verifier.decide(door, shown, actor="t", challenge=b"nonce-1").allow


def test_presentation_of_an_unbound_pass(world: World, verifier: PassVerifier, tenant_pass: issuing.IssuedPass) -> None:
    shown = dynamic.Holder().present(tenant_pass.text)
    assert verifier.decide(world.ids["door1"], shown, actor="t").reasons == ["presentation_without_holder_key"]


def test_renewal_keeps_the_phone_binding(ctx: AppContext, world: World, verifier: PassVerifier, holder: dynamic.Holder, bound_pass: issuing.IssuedPass) -> None:
    with ctx.db.session() as s:
        renewed = issuing.renew(s, ctx.sealer, OPERATOR, bound_pass.row.id)
    assert renewed.row.renewed_from_id == bound_pass.row.id
    assert verifier.decide(world.ids["door1"], holder.present(renewed.text), actor="t").allow


def test_a_replay_marker_lives_until_its_step_leaves_the_window_and_no_longer() -> None:
    step_start = datetime.fromtimestamp(1_800_000_000 // dynamic.STEP_SECONDS * dynamic.STEP_SECONDS, UTC)
    step = dynamic.step_at(step_start)
    window_end = step_start + timedelta(seconds=(dynamic.ACCEPTED_SKEW_STEPS + 1) * dynamic.STEP_SECONDS)
    for offset in range(-dynamic.STEP_SECONDS, 2 * dynamic.STEP_SECONDS, 7):  # every moment the step is accepted
        at = step_start + timedelta(seconds=offset)
        ttl = dynamic.replay_ttl(step, at)
        assert dynamic.step_at(at + timedelta(seconds=ttl)) - step > dynamic.ACCEPTED_SKEW_STEPS, offset  # no replay inside the window
        assert ttl <= (window_end - at).total_seconds() + dynamic.REPLAY_SLACK_SECONDS + 1, offset  # the store holds no more than that


@pytest.mark.parametrize("shape", ["four_items", "token_not_bytes", "step_not_int", "door_not_int", "challenge_too_long"])
def test_a_malformed_presentation_is_a_deny_with_a_reason(world: World, verifier: PassVerifier, holder: dynamic.Holder, bound_pass: issuing.IssuedPass, shape: str) -> None:
    token, step, door, challenge, signature = cbor2.loads(codec.decode_text(holder.present(bound_pass.text)))
    items = {
        "four_items": [token, step, door, challenge],
        "token_not_bytes": ["not bytes", step, door, challenge, signature],
        "step_not_int": [token, str(step), door, challenge, signature],
        "door_not_int": [token, step, "door-1", challenge, signature],
        "challenge_too_long": [token, step, door, b"x" * (dynamic.MAX_CHALLENGE + 1), signature],
    }[shape]
    decision = verifier.decide(world.ids["door1"], codec.encode_text(cbor2.dumps(items)), actor="t")
    assert (decision.allow, decision.reasons) == (False, ["presentation_invalid"])


def test_a_holder_key_of_another_kind_is_refused(ctx: AppContext, world: World, verifier: PassVerifier, holder: dynamic.Holder, bound_pass: issuing.IssuedPass) -> None:
    """A genuinely signed pass whose cnf key is not an Ed25519 OKP key: no presentation can prove it."""
    for odd_key in ({1: 2, -1: 1, -2: holder.public_key}, {1: 1, -1: 5, -2: holder.public_key}, {1: 1, -1: 6, -2: holder.public_key[:31]}):
        odd = resigned(ctx, bound_pass.text, holder_key=odd_key)
        assert verifier.decide(world.ids["door1"], holder.present(odd), actor="t").reasons == ["holder_key_unsupported"]
