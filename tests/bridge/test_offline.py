"""Offline decisions: service down -> the verified cache decides; revocations arrive with the next feed;
a stale, tampered or rolled-back feed is refused with a reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.model import utcnow
from door_firmware_bridge.offline import STATUS_FILE, TRUST_FILE, FeedError, OfflineCache
from door_firmware_bridge.simulators.lock import LockSim
from idsvc.audit.service import AuditFilter, query
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
            await until(lambda: bridge.offline.snapshot is not None, 10, "the first feed")
            await asyncio.to_thread(service.stop)
            await lock.scan(site.tenant_pass)
            await until(lambda: len(_decisions(bridge)) == 1, 10, "the offline decision")
            await lock.scan(revoked_text)
            await until(lambda: len(_decisions(bridge)) == 2, 10, "the second offline decision")
            assert _decisions(bridge) == [("access_granted", "offline", []), ("access_denied", "offline", ["pass_revoked"])]
            await until(lambda: lock.unlock_count == 1, 5, "the offline unlock")
            granted = bridge.journal.entries("access_granted")[0]
            assert granted.data["versions"]["status_list"] >= 1 and granted.data["versions"]["pass_id"]
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
            await until(lambda: bridge.offline.snapshot is not None, 10, "the first feed")
            first = bridge.offline.snapshot.status_version
            door = cfg.doors[0]
            assert bridge.offline.decide_qr(door, site.tenant_pass, utcnow()).allow
            site.set_pass_status(site.tenant_pass_id, "revoked")
            site.write_feed(feed)  # the sync agent drops the new lists
            await until(lambda: bridge.offline.snapshot.status_version > first, 10, "the new feed")
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
            await until(lambda: bridge.offline.snapshot is not None, 10, "the feed")
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
    trust, status = (feed / TRUST_FILE).read_bytes(), (feed / STATUS_FILE).read_bytes()
    cache = OfflineCache(site.root_spki, 900, tmp_path / "cache")
    tampered = bytearray(status)
    tampered[-5] ^= 1
    with pytest.raises(FeedError) as bad_signature:
        cache.load(trust, bytes(tampered))
    assert bad_signature.value.code == "feed_signature_invalid"
    with pytest.raises(FeedError) as swapped:
        cache.load(status, trust)  # the status list is not signed by the root key
    assert swapped.value.code == "feed_untrusted"
    cache.load(trust, status)
    site.set_pass_status(site.tenant_pass_id, "suspended")
    site.write_feed(feed)
    cache.load((feed / TRUST_FILE).read_bytes(), (feed / STATUS_FILE).read_bytes())
    with pytest.raises(FeedError) as rollback:
        cache.load(trust, status)  # replaying the old lists must not lift the suspension
    assert rollback.value.code == "feed_rollback"
    # A restart reads the last verified feed back from disk.
    again = OfflineCache(site.root_spki, 900, tmp_path / "cache")
    assert again.load_persisted() is not None and again.snapshot is not None and again.snapshot.status_version == cache.snapshot.status_version  # type: ignore[union-attr]
