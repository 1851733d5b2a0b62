"""MQTT locks on the real Mosquitto, driven by a real bridge asking a real service process."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import aiomqtt
import cv2
import numpy as np

from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.model import Command, Decision
from door_firmware_bridge.simulators.lock import Faults, LockSim
from tests.bridge.conftest import BROKER_PORT, ServiceProcess, Site, bridge_config, running, until


def _kinds(bridge: Bridge) -> list[str]:
    return [e.kind for e in bridge.journal.entries()]


def test_qr_unlock_ack_state_and_relock(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    cfg = bridge_config(site, tmp_path, service_url=service.url)

    async def scenario() -> None:
        lock = LockSim(cfg.site, "flat-101", port=BROKER_PORT)
        lock_task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            await lock.scan(site.tenant_pass)
            await until(lambda: "command_result" in _kinds(bridge), 10, "the unlock to be confirmed")
            assert lock.unlock_count == 1
            sent = lock.received[0]
            assert sent.retained is False and sent.expiry is not None and 1 <= sent.expiry <= cfg.doors[0].command_ttl_s
            assert sent.payload["action"] == "pulse_unlock" and sent.payload["duration_s"] == cfg.doors[0].pulse_s
            granted = bridge.journal.entries("access_granted")[0]
            assert granted.data["source"] == "online" and granted.data["credential"] == "qr" and granted.data["reasons"] == []
            assert bridge.journal.entries("command_result")[0].data["status"] == "executed"
            # The lock relocks by itself after the pulse and reports it on its retained state.
            await until(lambda: lock.history[-1] == "locked" and "unlocked" in lock.history, 10, "the lock to relock")
            await until(lambda: bridge.supervisor.door_status()["flat-101"]["lock"] == "locked", 5, "the bridge to see the relock")
            assert "relock_overdue" not in _kinds(bridge)
            await until(lambda: "door_relocked" in _kinds(bridge), 5, "the relock to be journalled")
            relocked = bridge.journal.entries("door_relocked")[0].data
            assert relocked["by"] == "device" and 0 < relocked["seconds_since_unlock"] < cfg.doors[0].pulse_s + cfg.doors[0].relock_grace_s
            # A stranger's code is refused with the service's reasons, and nothing is sent to the lock.
            await lock.scan("NH1:NOT-A-PASS")
            await until(lambda: "access_denied" in _kinds(bridge), 10, "the denial")
            assert bridge.journal.entries("access_denied")[0].data["reasons"] == ["base45_invalid"]
            assert lock.unlock_count == 1 and len(lock.received) == 1
            # Every journalled event reaches the service's audit trail.
            await until(lambda: bridge.journal.counts()["pending"] == 0, 10, "the upload")
        lock_task.cancel()

    asyncio.run(scenario())


def test_expired_and_duplicate_commands_are_not_run_again(site: Site, tmp_path: Path) -> None:
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9")
    door = cfg.doors[0]

    async def scenario() -> None:
        lock = LockSim(cfg.site, door.name, port=BROKER_PORT, faults=Faults(duplicate_acks=True))
        lock_task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            allow = Decision(True, (), "online", "qr")
            outcome = await bridge.supervisor.pulse(door, allow)
            assert outcome.status == "executed" and lock.unlock_count == 1
            # The lock acked twice (QoS 1 style); the second ack is journalled as ignored, not acted on.
            await until(lambda: "command_ack_ignored" in _kinds(bridge), 5, "the duplicate ack")
            # Replaying the same command (same cmd_id) is answered again, never run again.
            async with aiomqtt.Client("127.0.0.1", BROKER_PORT, protocol=aiomqtt.ProtocolVersion.V5) as other:
                replay = lock.received[0].payload
                await other.publish(f"acs/v1/{cfg.site}/{door.name}/cmd", json.dumps(replay), qos=1)
                expired = Command.pulse(1, 1, None).to_wire() | {"expires_at": "2020-01-01T00:00:00+00:00"}
                await other.publish(f"acs/v1/{cfg.site}/{door.name}/cmd", json.dumps(expired), qos=1)
                await until(lambda: len(lock.received) == 3, 5, "the lock to get both")
            assert lock.unlock_count == 1
            assert lock.results[expired["cmd_id"]] == "rejected_expired"
        lock_task.cancel()

    asyncio.run(scenario())


def test_face_frame_goes_to_the_service_and_offline_only_where_templates_are_shared(site: Site, service: ServiceProcess, tmp_path: Path) -> None:
    cfg = bridge_config(site, tmp_path, service_url=service.url)
    nobody = cv2.imencode(".jpg", np.full((480, 640, 3), 200, np.uint8))[1].tobytes()  # an empty hallway

    async def scenario() -> None:
        lock = LockSim(cfg.site, "flat-101", port=BROKER_PORT)
        lock_task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            await lock.show_face(nobody)
            await until(lambda: len(bridge.journal.entries("access_denied")) == 1, 20, "the face decision")
            await asyncio.to_thread(service.stop)
            await lock.show_face(nobody)
            await until(lambda: len(bridge.journal.entries("access_denied")) == 2, 20, "the offline face decision")
            online, offline = (e.data for e in bridge.journal.entries("access_denied"))
            assert (online["source"], online["credential"]) == ("online", "face") and online["reasons"]
            assert (offline["source"], offline["reasons"]) == ("offline", ["offline_face_not_allowed"])  # the site shares no templates
            assert lock.received == []
        lock_task.cancel()

    asyncio.run(scenario())


def test_signed_commands_broker_access_alone_cannot_unlock(site: Site, tmp_path: Path) -> None:
    key = b"0123456789abcdef0123456789abcdef"
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9", flat={"command_key": base64.b64encode(key).decode()})
    door = cfg.doors[0]

    async def scenario() -> None:
        lock = LockSim(cfg.site, door.name, port=BROKER_PORT, key=key)
        lock_task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            assert (await bridge.supervisor.pulse(door, Decision(True, (), "online", "qr"))).status == "executed"
            forged = Command.pulse(1, 5, None).to_wire(b"not the door's key at all, no....")
            unsigned = Command.pulse(1, 5, None).to_wire()
            async with aiomqtt.Client("127.0.0.1", BROKER_PORT, protocol=aiomqtt.ProtocolVersion.V5) as intruder:
                for command in (forged, unsigned):
                    await intruder.publish(f"acs/v1/{cfg.site}/{door.name}/cmd", json.dumps(command), qos=1)
                await until(lambda: len(lock.received) == 3, 5, "the lock to get both")
            assert lock.unlock_count == 1
            assert [lock.results[c["cmd_id"]] for c in (forged, unsigned)] == ["rejected_signature", "rejected_signature"]
        lock_task.cancel()

    asyncio.run(scenario())


def test_faces_decided_offline_from_the_feed_templates(site: Site, tmp_path: Path, shared_dir: Path) -> None:
    """Where the site shares templates and the person agreed to the offline copy: 1:N at the bridge with
    the service down, the same grant check, a stranger is unknown (never the nearest person), a
    template whose offline consent is withdrawn leaves the bridge and stops matching."""
    photos = shared_dir / "data" / "faces"
    site.set_site_settings({"sync": {"faces": True}})
    site.enrol_face("tenant", [(photos / "img1.jpg").read_bytes(), (photos / "img2.jpg").read_bytes()])  # Angelina Jolie
    site.enrol_face("employee", [(photos / "img3.jpg").read_bytes()], offline=True)  # Jennifer Aniston: of the site, not of this flat
    site.set_face_mode("flat", "face_only")
    feed = tmp_path / "feed"
    site.write_feed(feed)
    key = tmp_path / "site.key"
    key.write_text(site.site_key())
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9", feed_dir=feed, offline={"site_key_file": str(key), "faces": True})

    async def scenario() -> None:
        lock = LockSim(cfg.site, "flat-101", port=BROKER_PORT)
        lock_task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        async with running(Bridge(cfg)) as bridge:
            assert bridge.offline is not None
            await until(lambda: bridge.offline.state is not None, 10, "the feed")
            await lock.show_face((photos / "img4.jpg").read_bytes())  # Angelina Jolie again, another photo
            await until(lambda: len(bridge.journal.entries("access_granted")) == 1, 30, "the offline face decision")
            granted = bridge.journal.entries("access_granted")[0].data
            assert (granted["source"], granted["credential"]) == ("offline", "face") and granted["versions"]["candidates"] == 1
            assert granted["versions"]["score"] >= granted["versions"]["threshold"]
            await lock.show_face((photos / "img3.jpg").read_bytes())  # Jennifer Aniston: the employee, who may not open the flat
            await until(lambda: len(bridge.journal.entries("access_denied")) == 1, 30, "the employee at the flat")
            assert bridge.journal.entries("access_denied")[0].data["reasons"] == ["not_a_candidate"]
            assert lock.unlock_count == 1
            site.withdraw_offline_face("tenant")  # consent to the offline copy withdrawn: the template leaves the feed
            site.write_feed(feed)
            tenant = bytes.fromhex(site.pseudonym("tenant"))
            await until(lambda: tenant not in bridge.offline.state.templates, 10, "the template removed")
            await lock.show_face((photos / "img4.jpg").read_bytes())
            await until(lambda: len(bridge.journal.entries("access_denied")) == 2, 30, "the face without a template")
            assert bridge.journal.entries("access_denied")[1].data["reasons"] == ["unknown_face"]
            site.set_face_mode("flat", "face_and_pass")  # a face alone does not open this door any more
            site.write_feed(feed)
            await until(lambda: bridge.offline.state.face_modes.get(site.ids["flat"]) == "face_and_pass", 10, "the door's face mode")
            await lock.show_face((photos / "img4.jpg").read_bytes())
            await until(lambda: len(bridge.journal.entries("access_denied")) == 3, 30, "the face at a face_and_pass door")
            assert bridge.journal.entries("access_denied")[2].data["reasons"] == ["pass_required"]
        lock_task.cancel()

    asyncio.run(scenario())
