"""A camera at a door (RTSP URL or video file) read with OpenCV; QR codes are decoded here (zxing-cpp).

With ``face_frames`` the adapter also looks for a face a few times a second (the service's model
pack, detector only, ~6 ms) and sends a frame showing exactly one face big enough to be the person
at the door, at most once per ``face_repeat_s``; recognition and the decision stay with the service.

The capture runs in a thread because OpenCV blocks. Open and read timeouts bound each call (TCP
transport for RTSP, so lost UDP packets do not turn into grey frames), a one-frame buffer keeps
frames fresh, and a watchdog reopens the stream when no frame arrived for ``watchdog_s``. A camera
only reports what it saw; the door's own adapter opens the door.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import cv2
import numpy as np
import zxingcpp

from door_firmware_bridge.adapters.base import Sink
from door_firmware_bridge.config import CameraConfig, ConfigError, DoorConfig
from door_firmware_bridge.model import Command, Presented
from door_firmware_bridge.supervisor import DeviceUnavailable
from idsvc.config import Settings
from idsvc.faces.engine import FaceEngine, get_engine
from idsvc.faces.packs import PackError

os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


def face_detector() -> FaceEngine:
    """The installed face pack named by the idsvc settings (IDSVC_MODELS_DIR, IDSVC_FACE_PACK)."""
    settings = Settings()
    try:
        return get_engine(settings.models_dir, settings.face_pack, 1)
    except PackError as exc:
        raise ConfigError(f"camera.face_frames needs the face model pack on this host: {exc}") from exc


def decode_qr(frame: np.ndarray) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode) if r.valid and r.text]


class CameraAdapter:
    def __init__(self, door: DoorConfig, cfg: CameraConfig) -> None:
        self.doors = [door]
        self.door = door
        self.cfg = cfg
        self.frames = 0
        self.reopens = 0
        self.finished = False  # a file source that reached its end
        self._last_frame = time.monotonic()
        self._stop = threading.Event()
        self._reopen = threading.Event()
        # Loaded now so a missing model pack stops the bridge at start, not at the first visitor.
        self._faces = face_detector() if cfg.face_frames else None

    def health(self) -> dict[str, Any]:
        return {"source": self.cfg.source, "frames": self.frames, "reopens": self.reopens, "seconds_since_frame": round(time.monotonic() - self._last_frame, 1)}

    async def send(self, door: DoorConfig, cmd: Command) -> None:
        raise DeviceUnavailable("camera_cannot_actuate")

    async def run(self, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        found: asyncio.Queue[Presented] = asyncio.Queue(maxsize=64)

        def report(item: Presented) -> None:
            loop.call_soon_threadsafe(lambda: found.full() or found.put_nowait(item))

        reader = threading.Thread(target=self._read_loop, args=(report,), name=f"camera-{self.door.name}", daemon=True)
        reader.start()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.cfg.watchdog_s / 2):
                        item = await found.get()
                except TimeoutError:
                    if not self.finished and time.monotonic() - self._last_frame > self.cfg.watchdog_s:
                        self._reopen.set()  # watchdog: the stream is stuck, start over
                    continue
                await sink(item)
        finally:
            self._stop.set()
            await asyncio.to_thread(reader.join, self.cfg.read_timeout_s + self.cfg.open_timeout_s + 1)

    def _open(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.cfg.open_timeout_s * 1000), cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.cfg.read_timeout_s * 1000)]
        capture = cv2.VideoCapture(self.cfg.source, cv2.CAP_FFMPEG, params)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture

    def _one_face(self, frame: np.ndarray) -> bool:
        assert self._faces is not None
        return len([f for f in self._faces.detect(frame) if f.size >= self.cfg.face_min_px]) == 1

    def _read_loop(self, report: Any) -> None:
        is_file = os.path.exists(self.cfg.source)
        seen: dict[str, float] = {}
        face_checked = face_sent = float("-inf")
        while not self._stop.is_set():
            capture = self._open()
            self._reopen.clear()
            while not self._stop.is_set() and not self._reopen.is_set() and capture.isOpened():
                ok, frame = capture.read()
                if not ok:
                    break
                now = self._last_frame = time.monotonic()
                self.frames += 1
                texts = [t for t in decode_qr(frame) if now - seen.get(t, float("-inf")) > self.cfg.repeat_s]
                for text in texts:
                    seen[text] = now
                    report(Presented(self.door.name, f"camera:{self.door.name}", qr=text))
                if self._faces is not None and not texts and now - face_checked >= self.cfg.face_every_s:
                    face_checked = now
                    if now - face_sent >= self.cfg.face_repeat_s and self._one_face(frame):
                        encoded, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
                        if encoded:
                            face_sent = now
                            report(Presented(self.door.name, f"camera:{self.door.name}", face_jpeg=jpeg.tobytes()))
                if len(seen) > 1000:
                    seen = {t: at for t, at in seen.items() if now - at <= self.cfg.repeat_s}
            capture.release()
            if is_file:
                self.finished = True  # a recording has an end; a stream is reopened
                return
            self.reopens += 1
            self._stop.wait(1.0)
