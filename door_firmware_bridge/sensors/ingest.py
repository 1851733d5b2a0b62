"""The sensor ingest process: broker -> normalised readings -> journal -> service.

Every message that says something (a state, an availability change) is journalled before anything
else (``Journal``, the bridge's append-only SQLite, fsynced), then uploaded at least once by the
bridge's ``Uploader`` to ``POST /v1/device/sensor-readings``; the service drops re-sent readings
by time. While connected to the broker, it also heartbeats (``POST /v1/device/sensor-heartbeat``):
the service judges its sensors' silence only while it hears the ingest. Readings of one sensor get strictly increasing times here, which is what lets the service
recognise a re-sent one. The ingest holds no alarm logic: limits and hold times are the service's.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import aiomqtt
import httpx

from door_firmware_bridge.journal import Entry, Journal
from door_firmware_bridge.model import new_id, utcnow
from door_firmware_bridge.sensors import payloads
from door_firmware_bridge.sensors.config import Family, SensorConfig, SensorIngestConfig
from door_firmware_bridge.uploader import Uploader

log = logging.getLogger(__name__)
KIND = "sensor_reading"
READINGS_PATH = "/v1/device/sensor-readings"
HEARTBEAT_PATH = "/v1/device/sensor-heartbeat"


def to_body(entries: list[Entry]) -> dict[str, Any]:
    return {"readings": [{"event_id": e.event_id, "at": e.at.isoformat(), **e.data} for e in entries]}


class SensorIngest:
    def __init__(self, cfg: SensorIngestConfig) -> None:
        self.cfg = cfg
        self.journal = Journal(cfg.journal.path)
        self.uploader = Uploader(self.journal, cfg.service, cfg.journal, path=READINGS_PATH, to_body=to_body)
        self._routes: dict[str, tuple[SensorConfig, str]] = {}
        for sensor in cfg.sensors:
            if sensor.family is Family.zigbee2mqtt:
                base = f"{cfg.zigbee2mqtt_base}/{sensor.device_topic}"
                self._routes[base] = (sensor, "zigbee_state")
                self._routes[f"{base}/availability"] = (sensor, "zigbee_availability")
            else:
                base = f"{cfg.tasmota_prefix}/{sensor.device_topic}"
                self._routes[f"{base}/SENSOR"] = (sensor, "tasmota_sensor")
                self._routes[f"{base}/LWT"] = (sensor, "tasmota_lwt")
        self._last_at: dict[str, datetime] = {}
        self.connected = asyncio.Event()
        self.ignored = 0

    def reading(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        """The reading a message makes (``{"sensor", "online", "values"}``), or None."""
        route = self._routes.get(topic)
        if route is None:
            return None
        sensor, what = route
        online: bool | None = None
        values: dict[str, Any] | None = {}
        if what == "zigbee_state":
            values = payloads.zigbee_state(payload, sensor.readings)
        elif what == "tasmota_sensor":
            values = payloads.tasmota_sensor(payload, sensor.readings)
        elif what == "zigbee_availability":
            online = payloads.zigbee_availability(payload)
        else:
            online = payloads.tasmota_lwt(payload)
        if values is None or (not values and online is None):
            self.ignored += 1
            log.info("ignored a message on %s: not understood (%d bytes)", topic, len(payload))
            return None
        return {"sensor": sensor.code, "online": online, "values": values}

    def _stamp(self, code: str) -> datetime:
        at = utcnow()
        last = self._last_at.get(code)
        if last is not None and at <= last:
            at = last + timedelta(microseconds=1)
        self._last_at[code] = at
        return at

    async def record(self, topic: str, payload: bytes) -> Entry | None:
        data = self.reading(topic, payload)
        if data is None:
            return None
        entry = Entry(new_id(), KIND, self._stamp(data["sensor"]), None, None, data)
        await asyncio.to_thread(self.journal.append_many, [entry])
        return entry

    async def _listen(self) -> None:
        backoff = 0.2
        while True:
            client = aiomqtt.Client(self.cfg.broker.host, self.cfg.broker.port, identifier=self.cfg.client_id, username=self.cfg.broker.username,
                                    password=self.cfg.broker.password, keepalive=self.cfg.broker.keepalive_s, timeout=5)
            try:
                async with client:
                    # QoS 1: a smoke message the broker accepted must reach us even across a reconnect.
                    await client.subscribe([(topic, 1) for topic in self._routes])
                    self.connected.set()
                    backoff = 0.2
                    log.info("sensor ingest connected to %s:%s, %d sensors", self.cfg.broker.host, self.cfg.broker.port, len(self.cfg.sensors))
                    async for message in client.messages:
                        raw = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                        await self.record(str(message.topic), raw)
            except aiomqtt.MqttError as exc:
                log.warning("broker connection lost: %s; reconnecting in %.1f s", exc, backoff)
            finally:
                self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _heartbeat(self) -> None:
        """Only while the broker is connected: a silent sensor then means the sensor, not us."""
        async with httpx.AsyncClient(base_url=self.cfg.service.url, headers={"Authorization": f"Bearer {self.cfg.service.key()}"}, timeout=self.cfg.service.timeout_s) as client:
            while True:
                if self.connected.is_set():
                    try:
                        (await client.post(HEARTBEAT_PATH)).raise_for_status()
                    except httpx.HTTPError as exc:
                        log.debug("heartbeat failed: %s", exc)  # the uploader reports the service's absence
                await asyncio.sleep(self.cfg.heartbeat_s)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._listen())
                group.create_task(self.uploader.run())
                group.create_task(self._heartbeat())
        finally:
            await self.uploader.aclose()
            self.journal.close()
