"""Offline decisions from the signed sync feed: service down -> the verified cache decides; revocations
arrive with the next feed (pushed by the version stream); a stale, tampered, foreign or rolled-back
feed is refused with a reason."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
import pytest

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.model import utcnow
from door_firmware_bridge.offline import FEED_FILE, FeedError, OfflineCache
from door_firmware_bridge.simulators.lock import LockSim
from door_firmware_bridge.simulators.site import VAN_PLATE
from idsvc.audit.service import AuditFilter, query
from idsvc.auth import service as auth_keys
from idsvc.auth.models import Role
from idsvc.auth.principal import OPERATOR
from tests.bridge.conftest import BROKER_PORT, ServiceProcess, Site, bridge_config, running, until

NO_SERVICE = "http://127.0.0.1:9"  # nothing listens there: every online call fails at once


def _decisions(bridge: Bridge) -> list[tuple[str, str, list[str]]]:
    return [(e.kind, e.data["source"], e.data["reasons"]) for e in bridge.journal.entries() if e.kind.startswith("access_")]


def test_service_down_offline_decisions_then_everything_uploaded(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    revoked_id, revoked_text = site.issue_pass("tenant")
    site.set_pass_status(revoked_id, "revoked")
    cfg = bridge_config(site, tmp_path, service_url=service.url)

    async def scenario() -> None:
        lock = LockSim(cfg.site, "flat-101", port=BROKER_PORT)
        lock_task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            assert bridge.offline is not None
            await until(lambda: bridge.offline.state is not None, 10, "the first feed")
            await asyncio.to_thread(service.stop)
            await lock.scan(site.tenant_pass)
            await until(lambda: len(_decisions(bridge)) == 1, 10, "the offline decision")
            await lock.scan(revoked_text)
            await until(lambda: len(_decisions(bridge)) == 2, 10, "the second offline decision")
            assert _decisions(bridge) == [("access_granted", "offline", []), ("access_denied", "offline", ["pass_revoked"])]
            await until(lambda: lock.unlock_count == 1, 5, "the offline unlock")
            granted = bridge.journal.entries("access_granted")[0]
            assert granted.data["versions"]["feed"] >= 1 and granted.data["versions"]["pass_id"]
            assert bridge.journal.counts()["pending"] > 0  # nothing could be uploaded meanwhile
            await asyncio.to_thread(service.start)
            await until(lambda: bridge.journal.counts()["pending"] == 0, 20, "the backlog upload")
        lock_task.cancel()

    asyncio.run(scenario())
    with site.ctx.db.session() as s:
        trail = [e for e in query(s, AuditFilter(kind="device."), 200) if e.entity_type == "device_event"]
    offline = [e for e in trail if e.kind in ("device.access_granted", "device.access_denied")]
    assert [(e.kind, e.data["source"]) for e in offline] == [("device.access_granted", "offline"), ("device.access_denied", "offline")]
    assert {e.door_id for e in offline} == {site.ids["flat"]}


def test_pass_revoked_while_offline_is_denied_once_synced(site: Site, tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    site.write_feed(feed)
    cfg = bridge_config(site, tmp_path, service_url=NO_SERVICE, feed_dir=feed)

    async def scenario() -> None:
        bridge = Bridge(cfg)
        async with running(bridge):
            assert bridge.offline is not None
            await until(lambda: bridge.offline.state is not None, 10, "the first feed")
            first = bridge.offline.state.version
            door = cfg.doors[0]
            assert bridge.offline.decide_qr(door, site.tenant_pass, utcnow()).allow
            site.set_pass_status(site.tenant_pass_id, "revoked")
            site.write_feed(feed)  # the sync agent drops the new lists
            await until(lambda: bridge.offline.state.version > first, 10, "the new feed")
            denied = bridge.offline.decide_qr(door, site.tenant_pass, utcnow())
            assert not denied.allow and denied.reasons == ("pass_revoked",) and denied.source == "offline"

    asyncio.run(scenario())


def test_stale_feed_refuses_offline_qr_with_reason(site: Site, tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    site.write_feed(feed)
    cfg = bridge_config(site, tmp_path, service_url=NO_SERVICE, feed_dir=feed, offline={"max_staleness_s": 900})

    async def scenario() -> None:
        lock = LockSim(cfg.site, "flat-101", port=BROKER_PORT)
        lock_task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        bridge = Bridge(cfg)
        assert bridge.offline is not None
        # The lists were signed moments ago; a zero limit makes them stale without waiting 15 minutes.
        bridge.offline.max_staleness_s = 0
        async with running(bridge):
            await until(lambda: bridge.offline.state is not None, 10, "the feed")
            await lock.scan(site.tenant_pass)
            await until(lambda: len(_decisions(bridge)) == 1, 10, "the decision")
            assert _decisions(bridge) == [("access_denied", "offline", ["offline_cache_stale"])]
            await until(lambda: bool(bridge.journal.entries("cache_stale")), 5, "the cache_stale alarm")
            assert lock.unlock_count == 0 and lock.received == []
        lock_task.cancel()

    asyncio.run(scenario())


def test_feed_is_verified_before_use(site: Site, tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    site.write_feed(feed)
    first = (feed / FEED_FILE).read_bytes()
    cache = OfflineCache(site.root_spki, site.ids["site"], 900, tmp_path / "cache")
    tampered = bytearray(first)
    tampered[-5] ^= 1
    with pytest.raises(FeedError) as bad_signature:
        cache.apply(bytes(tampered))
    assert bad_signature.value.code == "feed_signature_invalid"
    foreign = OfflineCache(site.root_spki, site.ids["site"] + 100, 900, tmp_path / "other")
    with pytest.raises(FeedError) as wrong_site:
        foreign.apply(first)  # a feed for another site is not ours, however well signed
    assert wrong_site.value.code == "feed_wrong_site"
    cache.apply(first)
    site.set_pass_status(site.tenant_pass_id, "suspended")
    site.write_feed(feed)
    cache.apply((feed / FEED_FILE).read_bytes())
    assert cache.decide_qr(site_door(site), site.tenant_pass, utcnow()).reasons == ("pass_suspended",)
    with pytest.raises(FeedError) as rollback:
        cache.apply(first)  # replaying the old snapshot must not lift the suspension
    assert rollback.value.code == "feed_rollback"
    # A restart applies the kept documents again.
    again = OfflineCache(site.root_spki, site.ids["site"], 900, tmp_path / "cache")
    assert again.load_persisted() is not None and again.state is not None and cache.state is not None
    assert again.state.version == cache.state.version


def test_offline_checks_the_grant_for_this_door_now(site: Site, tmp_path: Path) -> None:
    """The feed carries grants with their door ids: the employee's pass opens the gate, not the flat."""
    feed = tmp_path / "feed"
    site.write_feed(feed)
    cache = OfflineCache(site.root_spki, site.ids["site"], 900, tmp_path / "cache")
    cache.apply((feed / FEED_FILE).read_bytes())
    cfg = bridge_config(site, tmp_path, service_url=NO_SERVICE, gate_url="http://127.0.0.1:9")
    flat, gate = cfg.doors
    assert cache.decide_qr(gate, site.employee_pass, utcnow()).allow
    assert cache.decide_qr(flat, site.employee_pass, utcnow()).reasons == ("no_grant_for_door",)
    assert cache.decide_qr(flat, site.tenant_pass, utcnow()).allow


def site_door(site: Site):  # noqa: ANN201
    return bridge_config(site, Path("/nonexistent"), service_url=NO_SERVICE).doors[0]


def test_revocation_is_pushed_to_the_bridge_by_the_version_stream(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    revoked_id, revoked_text = site.issue_pass("tenant")
    with site.ctx.db.session() as s:
        admin = auth_keys.issue_key(s, OPERATOR, Role.district_admin, label="admin").token
    # Polling alone would take a minute: only the pushed version can make this quick.
    cfg = bridge_config(site, tmp_path, service_url=service.url, offline={"refresh_s": 60})

    async def scenario() -> None:
        async with running(Bridge(cfg)) as bridge:
            assert bridge.offline is not None
            await until(lambda: bridge.offline.state is not None, 10, "the first feed")
            first = bridge.offline.state.version
            assert bridge.offline.decide_qr(cfg.doors[0], revoked_text, utcnow()).allow
            async with httpx.AsyncClient(base_url=service.url, headers={"Authorization": f"Bearer {admin}"}) as client:
                answer = await client.post(f"/v1/passes/{revoked_id}/status", json={"status": "revoked", "reason": "lost phone"})
                assert answer.status_code == 200, answer.text
            await until(lambda: bridge.offline.state.version > first, 15, "the pushed feed version")
            denied = bridge.offline.decide_qr(cfg.doors[0], revoked_text, utcnow())
            assert denied.reasons == ("pass_revoked",) and denied.versions["feed"] > first

    asyncio.run(scenario())


def test_stale_alarm_is_raised_when_the_copy_goes_stale_not_at_the_next_poll(site: Site, tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    site.write_feed(feed)
    cfg = bridge_config(site, tmp_path, service_url=NO_SERVICE, feed_dir=feed, offline={"refresh_s": 60})

    async def scenario() -> None:
        bridge = Bridge(cfg)
        assert bridge.offline is not None
        bridge.offline.max_staleness_s = 3  # stale 3 s after signing; the next poll is 60 s away
        async with running(bridge):
            await until(lambda: bridge.offline.state is not None, 10, "the feed")
            await until(lambda: bool(bridge.journal.entries("cache_stale")), 6, "the stale alarm")
            stale = bridge.journal.entries("cache_stale")[0]
            assert stale.data["alarm"] is True and 3 <= stale.data["age_s"] <= 5

    asyncio.run(scenario())


def test_use_limits_are_counted_offline_and_reconciled(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    """A visitor grant with 2 uses: the bridge counts offline on top of the feed's count, the service
    counts the offline uses when they are uploaded, and the next feed carries them (no double count)."""
    grant = site.grant_of("tenant", "flat_group")
    site.limit_uses(grant, 2)
    cfg = bridge_config(site, tmp_path, service_url=service.url)

    async def scenario() -> None:
        lock = LockSim(cfg.site, "flat-101", port=BROKER_PORT)
        lock_task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            assert bridge.offline is not None
            await until(lambda: bridge.offline.state is not None and bridge.offline.state.grants[grant]["max_uses"] == 2, 10, "the feed")
            await asyncio.to_thread(service.stop)
            for n in range(1, 4):
                await lock.scan(site.tenant_pass)
                await until(lambda n=n: len(_decisions(bridge)) == n, 10, f"offline decision {n}")
            assert _decisions(bridge) == [("access_granted", "offline", []), ("access_granted", "offline", []), ("access_denied", "offline", ["uses_exhausted"])]
            assert bridge.journal.offline_uses() == {grant: 2}
            granted = bridge.journal.entries("access_granted")[0].data["versions"]
            assert (granted["grant_id"], granted["counts_uses"]) == (grant, True)
            await asyncio.to_thread(service.start)
            await until(lambda: bridge.journal.counts()["pending"] == 0, 20, "the upload")
            assert site.uses(grant) == 2  # the service counted the offline uses
            await until(lambda: bridge.offline.state.grants[grant]["uses"] == 2 and bridge.journal.offline_uses() == {}, 20, "the feed to count them")
            denied = bridge.offline.decide_qr(cfg.doors[0], site.tenant_pass, utcnow())
            assert denied.reasons == ("uses_exhausted",)  # 2 in the feed, none on top: exhausted, not "4 used"
            await until(lambda: bridge.online.reachable, 10, "the bridge to try the service again (it skips it 5 s after a failure)")
            await lock.scan(site.tenant_pass)  # online now: the service says the same
            await until(lambda: len(_decisions(bridge)) == 4, 10, "the online decision")
            assert _decisions(bridge)[-1] == ("access_denied", "online", ["uses_exhausted"])
        lock_task.cancel()

    asyncio.run(scenario())


def test_plates_are_decided_offline_by_their_keyed_digest(site: Site, tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    site.write_feed(feed)
    key_file = tmp_path / "site.key"
    key_file.write_text(site.site_key())
    cache = OfflineCache(site.root_spki, site.ids["site"], 900, tmp_path / "cache", site_key=base64.b64decode(site.site_key()))
    document = (feed / FEED_FILE).read_bytes()
    cache.apply(document)
    assert VAN_PLATE.encode() not in document and "12345".encode() not in document  # no plate in clear in the feed
    cfg = bridge_config(site, tmp_path, service_url=NO_SERVICE, gate_url="http://127.0.0.1:9")
    gate = cfg.doors[1]
    assert cache.decide_plate(gate, "粤B·12345", utcnow()).allow  # separators ignored, as the service does
    assert cache.decide_plate(gate, "粤B99999", utcnow()).reasons == ("subject_unknown",)
    assert cache.decide_plate(cfg.doors[0], VAN_PLATE, utcnow()).reasons == ("no_grant_for_door",)
    site.set_grant_status(site.grant_of("van", "gate_group"), "suspend")
    site.write_feed(feed)
    cache.apply((feed / FEED_FILE).read_bytes())
    assert cache.decide_plate(gate, VAN_PLATE, utcnow()).reasons == ("grant_suspended",)
    keyless = OfflineCache(site.root_spki, site.ids["site"], 900, tmp_path / "cache2")
    keyless.apply(document)
    assert keyless.decide_plate(gate, VAN_PLATE, utcnow()).reasons == ("offline_plate_data_missing",)


def test_a_service_behind_the_bridge_is_an_alarm_not_a_silent_retry(site: Site, service: ServiceProcess) -> None:
    """After a restore the service's feed is older than the bridge's: the bridge says so (feed_version_ahead),
    and keeps refusing to go back by itself (feed_rollback guards against replayed old feeds)."""
    from door_firmware_bridge.offline import HttpFeedSource

    async def ahead() -> None:
        source = HttpFeedSource(service.url, site.bridge_key, site.ids["site"], 5)
        try:
            with pytest.raises(FeedError) as refused:
                await source.fetch(10**9)
            assert refused.value.code == "feed_version_ahead"
        finally:
            await source.aclose()

    asyncio.run(ahead())
