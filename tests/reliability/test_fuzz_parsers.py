"""Security regression: property-based fuzzing of the parsers that read what strangers send.

- the QR/pass decoder (``PassVerifier.identify``): any text, and a real pass with one byte changed,
  is refused with reasons, never an exception and never an identity it does not prove;
- the ISAPI event parser of the bridge (multipart bodies in any chunking, JSON, XML with entities):
  events or nothing, never an exception;
- the sync-feed verifier (``sync.verify.apply``): any bytes, and a real feed with one byte changed,
  raise ``SyncError`` or leave an identical signed feed; nothing else gets applied.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from door_firmware_bridge.adapters.isapi.messages import MultipartReader, event_from_xml, events_from_body
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.passes import codec, issuing, keys
from idsvc.passes.verify import PassVerifier
from idsvc.sync.verify import SyncError, apply, root_key
from tests.world import World

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], derandomize=True, database=None)
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _flip(data: bytes, index: int, bit: int) -> bytes:
    position = index % len(data)
    return data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1 :]


# --- the QR / pass decoder -------------------------------------------------------------------------
@pytest.fixture
def verifier_and_pass(ctx: AppContext, world: World) -> tuple[PassVerifier, bytes]:
    with ctx.db.session() as s:
        text = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]).text
    return PassVerifier(ctx, refresh_seconds=60), codec.decode_text(text)


@FUZZ
@given(text=st.one_of(st.text(max_size=600), st.text(alphabet=BASE45, max_size=600).map(lambda t: "NH1:" + t), st.binary(max_size=400).map(lambda b: codec.encode_text(b))))
def test_any_qr_text_is_refused_with_reasons(verifier_and_pass: tuple[PassVerifier, bytes], world: World, text: str) -> None:
    verifier, _ = verifier_and_pass
    identified = verifier.identify(text, world.ids["door1"], utcnow())
    assert identified.reasons and identified.person_id is None


@FUZZ
@given(index=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_a_pass_with_one_bit_changed_never_proves_its_holder(verifier_and_pass: tuple[PassVerifier, bytes], world: World, index: int, bit: int) -> None:
    verifier, token = verifier_and_pass
    changed = _flip(token, index, bit)
    identified = verifier.identify(codec.encode_text(changed), world.ids["door1"], utcnow())
    if not identified.reasons:  # only a change the signature does not cover may still verify
        original, mutated = codec.parse_sign1(token), codec.parse_sign1(changed)
        assert (mutated.payload, mutated.message.value[0], mutated.message.value[3]) == (original.payload, original.message.value[0], original.message.value[3])


# --- the ISAPI event parser (bridge) -------------------------------------------------------------
_PART = st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=20)), max_size=5).map(lambda d: json.dumps(d).encode()),
    st.sampled_from([
        b"<EventNotificationAlert><eventType>AccessControllerEvent</eventType><AccessControllerEvent><serialNo>7</serialNo></AccessControllerEvent></EventNotificationAlert>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><EventNotificationAlert>&b;</EventNotificationAlert>',
        b"<EventNotificationAlert><a><b><c>" * 50,
    ]),
)


@FUZZ
@given(parts=st.lists(st.tuples(st.sampled_from(["application/json", "application/xml", "image/jpeg", ""]), _PART), max_size=4),
       cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=20), junk=st.binary(max_size=50))
def test_isapi_bodies_give_events_or_nothing(parts: list[tuple[str, bytes]], cuts: list[int], junk: bytes) -> None:
    boundary = "MIME_boundary"
    body = junk + b"".join(b"--%s\r\nContent-Type: %s\r\n\r\n%s\r\n" % (boundary.encode(), kind.encode(), part) for kind, part in parts)
    events = events_from_body(body, f"multipart/mixed; boundary={boundary}")
    assert all(isinstance(e, dict) for e in events)
    reader, fed, start = MultipartReader(boundary), [], 0  # the alert stream's way: the same body in arbitrary chunks
    for cut in cuts:
        fed += reader.feed(body[start : start + cut])
        start += cut
    fed += reader.feed(body[start:] + b"\r\n--" + boundary.encode())
    assert all(isinstance(headers, dict) and isinstance(part, bytes) for headers, part in fed)


@FUZZ
@given(text=st.binary(max_size=500))
def test_isapi_xml_never_raises(text: bytes) -> None:
    assert event_from_xml(b"<" + text) is None or isinstance(event_from_xml(b"<" + text), dict)


# --- the sync-feed verifier (bridge) --------------------------------------------------------------
@pytest.fixture
def feed_and_root(ctx: AppContext, client: TestClient, world: World) -> tuple[bytes, Any]:
    with ctx.db.session() as s:
        keys.active_issuer_key(s, ctx.sealer)
        row = keys.root_public_key(s)
        assert row is not None
        root = root_key(row.public_der)
    answer = client.get(f"/v1/sync/sites/{world.ids['site_a']}/feed", headers=world.auth("device1"))
    assert answer.status_code == 200
    return answer.content, root


@FUZZ
@given(data=st.binary(max_size=2000))
def test_any_bytes_are_refused_as_a_feed(feed_and_root: tuple[bytes, Any], world: World, data: bytes) -> None:
    with pytest.raises(SyncError):
        apply(None, data, feed_and_root[1], site_id=world.ids["site_a"])


@FUZZ
@given(index=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_a_feed_with_one_bit_changed_is_refused(feed_and_root: tuple[bytes, Any], world: World, index: int, bit: int) -> None:
    document, root = feed_and_root
    changed = _flip(document, index, bit)
    try:
        apply(None, changed, root, site_id=world.ids["site_a"])
    except SyncError:
        return
    original, mutated = codec.parse_sign1(document), codec.parse_sign1(changed)  # applied: only an unsigned byte changed
    assert (mutated.payload, mutated.message.value[0]) == (original.payload, original.message.value[0])
