"""Every default-deny reason the bridge adds (docs/bridge.md, "Decisions"), against real sockets.

The service here is a server this test owns: one that accepts connections and never answers (a slow
service, not a refused connection), one that answers allow after the door's deadline, one whose
answer is unclear or a refusal. Each must end in a deny with its reason, never in an open door.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.config import BridgeConfig, DoorConfig
from door_firmware_bridge.decisions import Decider, OnlineDecider
from door_firmware_bridge.model import Presented, utcnow
from door_firmware_bridge.offline import FEED_FILE, OfflineCache
from idsvc.passes import codec
from tests.bridge.conftest import Site, bridge_config, running
from tests.prerequisites import missing
from tests.tamper import from_another_issuer, protected_header, signature_flipped

ALLOW = {"allow": True, "decision": "allow", "reasons": [], "decision_id": "d" * 32}


class ScriptedService:
    """An HTTP server on a free port answering every request with ``status`` and ``body`` after
    ``delay_s``; counts the decisions it was asked for (``/v1/device/*verify``; a running bridge also uploads)."""

    def __init__(self, status: int = 200, body: Any = ALLOW, delay_s: float = 0.0) -> None:
        self.status, self.body, self.delay_s = status, body, delay_s
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests += self.path.startswith("/v1/device/") and self.path.endswith("verify")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(outer.delay_s)
                raw = outer.body if isinstance(outer.body, bytes) else json.dumps(outer.body).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_POST = do_GET = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def silent_service() -> Iterator[str]:
    """A port that accepts TCP connections (the kernel completes them) and never says a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def _cfg(site: Site, tmp_path: Path, url: str, **overrides: Any) -> BridgeConfig:
    overrides.setdefault("offline", {"enabled": False})
    return bridge_config(site, tmp_path, service_url=url, **overrides)


def _decide(cfg: BridgeConfig, presented: Presented, offline: OfflineCache | None = None, door: DoorConfig | None = None) -> Any:
    async def run() -> Any:
        online = OnlineDecider(cfg.service)
        try:
            return await Decider(online, offline).decide(door or cfg.doors[0], presented)
        finally:
            await online.aclose()

    return asyncio.run(run())


def _qr(text: str, door: str = "flat-101", **fields: Any) -> Presented:
    return Presented(door=door, source="test-terminal", qr=text, **fields)


def _offline_cache(site: Site, tmp_path: Path, cfg: BridgeConfig) -> OfflineCache:
    site.write_feed(tmp_path / "feed")
    cache = OfflineCache(site.root_spki, cfg.service_site_id, 900, tmp_path / "cache")
    cache.apply((tmp_path / "feed" / FEED_FILE).read_bytes())
    return cache


# --- the service is slow, unclear or refuses -------------------------------------------------------


def test_a_slow_service_without_an_offline_cache_is_a_deny(site: Site, tmp_path: Path, silent_service: str) -> None:
    cfg = _cfg(site, tmp_path, silent_service, service={"url": silent_service, "device_key": site.bridge_key, "timeout_s": 0.5})
    started = time.monotonic()
    by_pass = _decide(cfg, _qr(site.tenant_pass))
    assert time.monotonic() - started >= 0.5  # it waited out the read timeout: the socket was open, not refused
    assert (by_pass.allow, by_pass.source, by_pass.reasons) == (False, "offline", ("offline_disabled", "service_unreachable"))
    by_face = _decide(cfg, Presented(door="flat-101", source="camera", face_jpeg=b"\xff\xd8 not looked at"))
    assert (by_face.allow, by_face.reasons) == (False, ("offline_disabled", "service_unreachable"))


def test_a_slow_plate_lookup_without_an_offline_cache_is_a_deny(site: Site, tmp_path: Path, silent_service: str) -> None:
    cfg = _cfg(site, tmp_path, silent_service, service={"url": silent_service, "device_key": site.bridge_key, "timeout_s": 0.5},
               gate_url="http://127.0.0.1:9", gate={"lane": "plate_only", "isapi": {"allowed_sources": ["127.0.0.1"]}})
    decision = _decide(cfg, Presented(door="gate-in", source="plate-camera", plate="粤B12345", plate_confidence=95), door=cfg.doors[1])
    assert (decision.allow, decision.credential, decision.reasons) == (False, "plate", ("offline_disabled", "service_unreachable"))


def test_a_slow_service_falls_back_to_the_verified_cache(site: Site, tmp_path: Path, silent_service: str) -> None:
    cfg = _cfg(site, tmp_path, silent_service, service={"url": silent_service, "device_key": site.bridge_key, "timeout_s": 0.5})
    decision = _decide(cfg, _qr(site.tenant_pass), offline=_offline_cache(site, tmp_path, cfg))
    assert (decision.allow, decision.source) == (True, "offline")


def test_after_a_timeout_the_service_is_skipped_for_a_while(site: Site, tmp_path: Path, silent_service: str) -> None:
    """During an outage each scan must not wait out a timeout again (RETRY_S): the second is at once."""
    cfg = _cfg(site, tmp_path, silent_service, service={"url": silent_service, "device_key": site.bridge_key, "timeout_s": 1.0})

    async def two_scans() -> list[float]:
        online = OnlineDecider(cfg.service)
        decider, took = Decider(online, None), []
        try:
            for _ in range(2):
                started = time.monotonic()
                assert (await decider.decide(cfg.doors[0], _qr(site.tenant_pass))).reasons == ("offline_disabled", "service_unreachable")
                took.append(time.monotonic() - started)
        finally:
            await online.aclose()
        return took

    first, second = asyncio.run(two_scans())
    assert first >= 1.0 and second < 0.5  # margin for a loaded machine: the skip costs microseconds


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_falls_back_to_the_verified_cache(site: Site, tmp_path: Path, status: int) -> None:
    """5xx means the service could not decide: offline decides (unlike a 4xx, which is final)."""
    cfg = _cfg(site, tmp_path, "http://127.0.0.1:9")
    offline = _offline_cache(site, tmp_path, cfg)
    with ScriptedService(status, {"error": {"code": "internal", "message": "down"}}) as service:
        decision = _decide(_cfg(site, tmp_path, service.url), _qr(site.tenant_pass), offline=offline)
    assert (decision.allow, decision.source) == (True, "offline")


@pytest.mark.parametrize("body", [{}, {"allow": "true"}, {"allow": 1}, {"decision": "allow"}, [], "allow", None,
                                  {"allow": True, "reasons": "none"}, {"allow": True, "reasons": [{"code": "x"}]}])
def test_an_unclear_service_answer_is_a_deny(site: Site, tmp_path: Path, body: Any) -> None:
    with ScriptedService(200, body) as service:
        decision = _decide(_cfg(site, tmp_path, service.url), _qr(site.tenant_pass))
    assert (decision.allow, decision.source, decision.reasons) == (False, "online", ("service_answer_unclear",))


def test_an_allow_with_reasons_is_a_deny_with_those_reasons(site: Site, tmp_path: Path) -> None:
    with ScriptedService(200, ALLOW | {"reasons": ["pass_revoked"]}) as service:
        decision = _decide(_cfg(site, tmp_path, service.url), _qr(site.tenant_pass))
    assert (decision.allow, decision.reasons) == (False, ("pass_revoked",))


@pytest.mark.parametrize(("status", "body", "reason"), [
    (403, {"error": {"code": "door_not_bound", "message": "no"}}, "service_refused:door_not_bound"),
    (401, {"error": {"code": "key_invalid", "message": "no"}}, "service_refused:key_invalid"),
    (404, ["not an error body"], "service_refused:404"),
])
def test_a_refusal_by_the_service_is_final_not_an_offline_allow(site: Site, tmp_path: Path, status: int, body: Any, reason: str) -> None:
    cfg = _cfg(site, tmp_path, "http://127.0.0.1:9")
    offline = _offline_cache(site, tmp_path, cfg)  # would allow this pass: it must not be asked
    with ScriptedService(status, body) as service:
        cfg = _cfg(site, tmp_path, service.url)
        decision = _decide(cfg, _qr(site.tenant_pass), offline=offline)
    assert (decision.allow, decision.source, decision.reasons) == (False, "online", (reason,))


# --- evidence the bridge refuses on its own -------------------------------------------------------


def test_lane_and_plate_refusals(site: Site, tmp_path: Path) -> None:
    with ScriptedService() as service:  # would allow anything: none of these may reach it
        cfg = _cfg(site, tmp_path, service.url, gate_url="http://127.0.0.1:9",
                   gate={"lane": "plate_only", "isapi": {"allowed_sources": ["127.0.0.1"]}})
        gate = cfg.doors[1]
        needs_plate = _decide(cfg, _qr(site.tenant_pass, door="gate-in"), door=gate)
        unreadable = _decide(cfg, Presented(door="gate-in", source="cam", plate="??", plate_confidence=99), door=gate)
        low = _decide(cfg, Presented(door="gate-in", source="cam", plate="粤B12345", plate_confidence=10), door=gate)
        nothing = _decide(cfg, Presented(door="flat-101", source="terminal"))
        cfg = _cfg(site, tmp_path, service.url, gate_url="http://127.0.0.1:9",
                   gate={"lane": "plate_and_pass", "isapi": {"allowed_sources": ["127.0.0.1"]}})
        needs_pass = _decide(cfg, Presented(door="gate-in", source="terminal", face_jpeg=b"\xff\xd8"), door=cfg.doors[1])
        no_plate = _decide(cfg, _qr(site.tenant_pass, door="gate-in"), door=cfg.doors[1])
        assert service.requests == 0
    assert [(d.allow, d.source, d.reasons) for d in (needs_plate, unreadable, low, nothing, needs_pass, no_plate)] == [
        (False, "bridge", ("lane_needs_plate",)), (False, "bridge", ("plate_unreadable",)), (False, "bridge", ("plate_low_confidence",)),
        (False, "bridge", ("no_credential",)), (False, "bridge", ("lane_needs_pass",)), (False, "bridge", ("plate_missing",)),
    ]


def test_a_late_or_early_terminal_clock_is_refused_without_asking(site: Site, tmp_path: Path) -> None:
    async def scenario(url: str) -> list[Any]:
        async with running(Bridge(_cfg(site, tmp_path, url))) as bridge:
            now = utcnow()
            late = await bridge.transaction(_qr(site.tenant_pass, at=now - timedelta(seconds=120), received_at=now))
            early = await bridge.transaction(_qr(site.tenant_pass, at=now + timedelta(seconds=120), received_at=now))
            return [late, early]

    with ScriptedService() as service:
        late, early = asyncio.run(scenario(service.url))
        assert service.requests == 0  # refused before asking: the pass is not used up
    assert (late.decision.allow, late.decision.source, late.decision.reasons, late.outcome) == (False, "bridge", ("presentation_late",), None)
    assert (early.decision.allow, early.decision.reasons, early.outcome) == (False, ("presentation_from_future",), None)


def test_an_allow_that_arrives_after_the_deadline_opens_nothing(site: Site, tmp_path: Path) -> None:
    """The service says allow, but only after the door's command_ttl_s: the bridge denies (decision_late)."""
    async def scenario(url: str) -> Any:
        cfg = _cfg(site, tmp_path, url, flat={"command_ttl_s": 1, "ack_timeout_s": 1})
        async with running(Bridge(cfg)) as bridge:
            transaction = await bridge.transaction(_qr(site.tenant_pass))
            journalled = [(e.kind, e.data["reasons"]) for e in bridge.journal.entries() if e.kind.startswith("access_")]
            return transaction, journalled

    with ScriptedService(200, ALLOW, delay_s=1.6) as service:
        transaction, journalled = asyncio.run(scenario(service.url))
        assert service.requests == 1
    assert (transaction.decision.allow, transaction.decision.reasons, transaction.outcome) == (False, ("decision_late",), None)
    assert journalled == [("access_denied", ["decision_late"])]


# --- the offline cache's own refusals -------------------------------------------------------------


def test_offline_refuses_a_tampered_signature_with_a_trusted_kid(site: Site, tmp_path: Path) -> None:
    cfg = _cfg(site, tmp_path, "http://127.0.0.1:9")
    cache, door, now = _offline_cache(site, tmp_path, cfg), cfg.doors[0], utcnow()
    assert cache.decide_qr(door, site.tenant_pass, now).allow
    forged = cache.decide_qr(door, signature_flipped(site.tenant_pass), now)
    assert (forged.allow, forged.reasons) == (False, ("signature_invalid",))
    foreign = cache.decide_qr(door, from_another_issuer(site.ctx, site.tenant_pass), now)
    assert (foreign.allow, foreign.reasons) == (False, ("issuer_unknown",))


def test_offline_refusals_before_any_credential_is_read(site: Site, tmp_path: Path) -> None:
    cfg = _cfg(site, tmp_path, "http://127.0.0.1:9")
    door, now = cfg.doors[0], utcnow()
    empty = OfflineCache(site.root_spki, cfg.service_site_id, 900, tmp_path / "empty")
    assert empty.decide_qr(door, site.tenant_pass, now).reasons == ("offline_cache_missing",)
    cache = _offline_cache(site, tmp_path, cfg)
    assert cache.decide_qr(door, site.tenant_pass, now).allow
    ahead = now - timedelta(seconds=600)  # the bridge's clock 10 minutes behind the feed's signing time
    assert cache.decide_qr(door, site.tenant_pass, ahead).reasons == ("offline_clock_behind_feed",)
    no_offline_qr = _cfg(site, tmp_path, "http://127.0.0.1:9", flat={"offline_qr": False}).doors[0]
    assert cache.decide_qr(no_offline_qr, site.tenant_pass, now).reasons == ("offline_not_allowed_for_door",)


def test_offline_faces_refuse_when_the_feed_names_another_pack(site: Site, tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed's face policy is for the service's pack; a bridge with another pack has no threshold for it."""
    from door_firmware_bridge.adapters.camera import face_detector
    from door_firmware_bridge.config import ConfigError
    from door_firmware_bridge.offline_faces import OfflineFaces, load_calibration
    from idsvc.config import Settings

    try:
        engine = face_detector()
    except ConfigError as exc:
        missing(f"{exc} (run `idsvc models install`)")
    photos = shared_dir / "data" / "faces"
    site.set_site_settings({"sync": {"faces": True}})
    site.enrol_face("tenant", [(photos / "img1.jpg").read_bytes(), (photos / "img2.jpg").read_bytes()])
    site.set_face_mode("flat", "face_only")
    monkeypatch.setattr(site.ctx.settings, "face_pack", "faceplugin-0.0.1")  # the service moved to another pack
    site.write_feed(tmp_path / "feed")
    key = base64.b64decode(site.site_key())
    cfg = _cfg(site, tmp_path, "http://127.0.0.1:9")
    faces = OfflineFaces(engine, key, load_calibration(Settings(_env_file=None)))  # type: ignore[call-arg]
    cache = OfflineCache(site.root_spki, cfg.service_site_id, 900, tmp_path / "cache", site_key=key, faces=faces)
    cache.apply((tmp_path / "feed" / FEED_FILE).read_bytes())
    decision = cache.decide_face(cfg.doors[0], (photos / "img4.jpg").read_bytes(), utcnow())
    assert (decision.allow, decision.reasons) == (False, ("offline_face_pack_mismatch",))


def test_offline_checks_every_pass_property_the_service_checks(site: Site, tmp_path: Path) -> None:
    """Offline is the same decision as online: kid and alg, a key the feed does not trust, validity
    dates, a phone-bound pass shown as a picture, a replayed phone code."""
    from idsvc.auth.principal import OPERATOR
    from idsvc.passes import dynamic, issuing, keys

    holder = dynamic.Holder()
    with site.ctx.db.session() as s:
        short_lived = issuing.issue(s, site.ctx.sealer, OPERATOR, site.ids["tenant"], lifetime=timedelta(minutes=1)).text
        bound = issuing.issue(s, site.ctx.sealer, OPERATOR, site.ids["tenant"], holder_public_key=holder.public_key).text
    cfg = _cfg(site, tmp_path, "http://127.0.0.1:9")
    cache, door, now = _offline_cache(site, tmp_path, cfg), cfg.doors[0], utcnow()
    with site.ctx.db.session() as s:  # a key made after the feed was written: not in the bridge's trust list
        keys.rotate(s, site.ctx.sealer, OPERATOR)
        untrusted = issuing.issue(s, site.ctx.sealer, OPERATOR, site.ids["tenant"]).text

    def reasons(text: str, at: object = now) -> tuple[str, ...]:
        return cache.decide_qr(door, text, at).reasons  # type: ignore[arg-type]  # empty: allowed

    genuine = codec.parse_sign1(codec.decode_text(site.tenant_pass))
    assert reasons(protected_header(site.tenant_pass, {codec.HDR_ALG: genuine.alg})) == ("kid_missing",)
    assert reasons(protected_header(site.tenant_pass, {codec.HDR_ALG: codec.ALG_PS256, codec.HDR_KID: genuine.kid})) == ("alg_not_allowed",)
    assert reasons(untrusted) == ("kid_unknown",)
    assert reasons(short_lived, now + timedelta(minutes=2)) == ("pass_expired",)
    assert reasons(short_lived, now - timedelta(seconds=60)) == ("pass_not_yet_valid",)
    assert reasons(bound) == ("presentation_required",)
    shown = holder.present(bound, door_id=door.door_id)
    assert reasons(shown) == ()
    assert reasons(shown) == ("presentation_replayed",)


def test_the_temperature_gate_takes_only_this_transactions_unused_reading() -> None:
    from door_firmware_bridge import temperature
    from door_firmware_bridge.config import TemperatureConfig
    from door_firmware_bridge.model import Reading

    policy, ledger, now = TemperatureConfig(), temperature.ReadingLedger(size=2), utcnow()

    def verdict(reading: Reading | None, required: bool = True) -> tuple[str, ...]:
        return temperature.check(policy, Presented(door="flat-101", source="terminal-1", at=now, qr="x", temperature=reading), required, ledger).reasons

    assert verdict(None) == ("temperature_missing",)
    assert verdict(None, required=False) == ()
    assert verdict(Reading(36.5, "terminal-2", now)) == ("temperature_not_this_transaction",)  # another device's reading
    late = now - timedelta(seconds=policy.window_s + 1)
    assert verdict(Reading(36.5, "terminal-1", late)) == ("temperature_not_this_transaction",)  # this device, too long before
    fresh = Reading(36.5, "terminal-1", now)
    assert verdict(fresh) == ()
    assert verdict(fresh) == ("temperature_reading_used",)  # one reading lets one person pass
    for _ in range(3):
        assert verdict(Reading(36.6, "terminal-1", now)) == ()
    assert len(ledger._used) == 2  # bounded: the oldest readings are forgotten
