"""A camera at a door (a recording here; RTSP in the field): QR decoded locally, one scan per showing."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import cv2
import numpy as np
import segno

from door_firmware_bridge.adapters.camera import CameraAdapter
from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.config import CameraConfig
from door_firmware_bridge.model import Presented
from door_firmware_bridge.simulators.lock import LockSim
from tests.bridge.conftest import BROKER_PORT, Site, bridge_config, running, until


def _recording(path: Path, text: str, frames: int = 15) -> Path:
    """A 640x480 MJPG clip: a few empty frames, then a phone showing the QR for ``frames`` frames."""
    png = io.BytesIO()
    segno.make(text, error="q").save(png, kind="png", scale=5, border=4)
    code = cv2.imdecode(np.frombuffer(png.getvalue(), np.uint8), cv2.IMREAD_COLOR)
    blank = np.full((480, 640, 3), 235, np.uint8)
    shown = blank.copy()
    shown[40 : 40 + code.shape[0], 60 : 60 + code.shape[1]] = code
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for frame in [blank] * 3 + [shown] * frames + [blank] * 3:
        writer.write(frame)
    writer.release()
    return path


def test_camera_qr_opens_the_door_once(site: Site, tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    site.write_feed(feed)
    clip = _recording(tmp_path / "door.avi", site.tenant_pass)
    cfg = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9", feed_dir=feed, flat={"camera": {"source": str(clip)}})

    async def scenario() -> None:
        lock = LockSim(cfg.site, "flat-101", port=BROKER_PORT)
        lock_task = asyncio.create_task(lock.run())
        await asyncio.wait_for(lock.connected.wait(), 10)
        bridge = Bridge(cfg)
        assert bridge.offline is not None
        await bridge.refresh_feed()  # the verified lists are in before the first frame
        async with running(bridge):
            camera = bridge.cameras[0]
            await until(lambda: camera.finished, 20, "the clip to be read")
            await until(lambda: lock.unlock_count == 1, 10, "the unlock")
            decisions = [e for e in bridge.journal.entries() if e.kind.startswith("access_")]
            assert [(e.kind, e.data["source"]) for e in decisions] == [("access_granted", "offline")]  # 15 frames, one scan
            assert camera.health()["frames"] == 21
        lock_task.cancel()

    asyncio.run(scenario())


def test_dead_stream_is_retried_not_fatal(site: Site, tmp_path: Path) -> None:
    door = bridge_config(site, tmp_path, service_url="http://127.0.0.1:9").doors[0]
    camera = CameraAdapter(door, CameraConfig(source="rtsp://127.0.0.1:9/nothing", open_timeout_s=0.5, read_timeout_s=0.5, watchdog_s=1.0))
    seen: list[Presented] = []

    async def sink(event: Presented) -> None:  # type: ignore[override]
        seen.append(event)

    async def scenario() -> None:
        task = asyncio.create_task(camera.run(sink))  # type: ignore[arg-type]
        await until(lambda: camera.reopens >= 2, 15, "two reopen attempts")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert seen == [] and camera.frames == 0 and not camera.finished
