"""A camera at a door (a recording here; RTSP in the field): QR decoded locally, one scan per showing."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from door_firmware_bridge.adapters.camera import CameraAdapter
from door_firmware_bridge.bridge import Bridge
from door_firmware_bridge.config import CameraConfig
from door_firmware_bridge.model import Presented
from door_firmware_bridge.simulators.lock import LockSim
from tests.bridge.conftest import BROKER_PORT, Site, bridge_config, running, until
from tests.prerequisites import missing


def _clip(path: Path, picture: np.ndarray, frames: int) -> Path:
    """A 640x480 MJPG clip: a few empty frames, then ``picture`` held up for ``frames`` frames."""
    blank = np.full((480, 640, 3), 235, np.uint8)
    shown = blank.copy()
    shown[20 : 20 + picture.shape[0], 20 : 20 + picture.shape[1]] = picture
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for frame in [blank] * 3 + [shown] * frames + [blank] * 3:
        writer.write(frame)
    writer.release()
    return path


def _recording(path: Path, text: str, frames: int = 15) -> Path:
    """A phone showing the QR for ``frames`` frames."""
    png = io.BytesIO()
    segno.make(text, error="q").save(png, kind="png", scale=5, border=4)
    return _clip(path, cv2.imdecode(np.frombuffer(png.getvalue(), np.uint8), cv2.IMREAD_COLOR), frames)


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


def _face_clip(path: Path, photo: bytes, frames: int = 10) -> Path:
    """A person standing in front of the camera."""
    face = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    scale = min(440 / face.shape[0], 600 / face.shape[1])
    return _clip(path, cv2.resize(face, (int(face.shape[1] * scale), int(face.shape[0] * scale))), frames)


def _face_frames(clip: Path, **camera: object) -> list[bytes]:
    from door_firmware_bridge.adapters.camera import face_detector
    from door_firmware_bridge.config import ConfigError, DoorConfig

    try:
        face_detector()  # raises ConfigError only when the face pack is absent
    except ConfigError as exc:
        missing(f"{exc} (run `idsvc models install`)")
    door = DoorConfig(name="gate-cam", door_id=1, site_id=1, camera=CameraConfig(source=str(clip), face_frames=True, face_every_s=0.001, **camera))
    adapter = CameraAdapter(door, door.camera)  # type: ignore[arg-type]  # any other ConfigError is a failure
    seen: list[Presented] = []

    async def sink(item: Presented) -> None:
        seen.append(item)

    async def scenario() -> None:
        task = asyncio.create_task(adapter.run(sink))
        await until(lambda: adapter.finished, 20, "the clip to be read")
        await asyncio.sleep(0.2)  # let the last reports through
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert all(p.qr is None for p in seen)
    return [p.face_jpeg for p in seen if p.face_jpeg is not None]


def test_camera_sends_a_face_frame_once_per_presence(shared_dir: Path, tmp_path: Path) -> None:
    from idsvc.config import Settings
    from idsvc.faces.engine import get_engine

    clip = _face_clip(tmp_path / "face.avi", (shared_dir / "data" / "faces" / "img1.jpg").read_bytes())
    once = _face_frames(clip, face_repeat_s=60)
    assert len(once) == 1
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    sent = cv2.imdecode(np.frombuffer(once[0], np.uint8), cv2.IMREAD_COLOR)
    assert len(get_engine(settings.models_dir, settings.face_pack, 1).detect(sent)) == 1  # what the service will see
    assert len(_face_frames(clip, face_repeat_s=0)) == 10  # every frame showing the face, when asked to

    empty = _recording(tmp_path / "empty.avi", "NH1:NOTAPASS", frames=0)
    assert _face_frames(empty, face_repeat_s=0) == []


def test_a_camera_with_face_frames_refuses_to_start_without_a_face_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from door_firmware_bridge.config import ConfigError, DoorConfig

    monkeypatch.setenv("IDSVC_MODELS_DIR", str(tmp_path / "no-models"))
    door = DoorConfig(name="gate-cam", door_id=1, site_id=1, camera=CameraConfig(source="rtsp://127.0.0.1:9/none", face_frames=True))
    with pytest.raises(ConfigError, match="idsvc models install"):
        CameraAdapter(door, door.camera)  # type: ignore[arg-type]
