"""The bridge process: adapters feed events in, decisions are journalled, the supervisor acts.

A presentation's path: late or badly-tied evidence is refused here (rules 1 and 7) -> the decider
(service, else offline cache) -> the decision is journalled durably -> only then, for an allow, the
supervisor pulses the door. Everything else a device says goes to the supervisor (acks, state,
availability) or straight to the journal. The feed loop keeps the offline cache fresh and journals
``cache_stale`` when it is not; the uploader drains the journal to the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from door_firmware_bridge import temperature
from door_firmware_bridge.adapters.base import Adapter
from door_firmware_bridge.adapters.camera import CameraAdapter
from door_firmware_bridge.adapters.isapi import IsapiAdapter
from door_firmware_bridge.adapters.mqtt import MqttAdapter
from door_firmware_bridge.config import Adapter as AdapterKind
from door_firmware_bridge.config import BridgeConfig, DoorConfig, FeedKind
from door_firmware_bridge.decisions import Decider, OnlineDecider, presented_kind
from door_firmware_bridge.journal import Entry, Journal, JournalWriter
from door_firmware_bridge.model import Availability, CommandResult, Decision, DeviceEvent, DoorState, Presented, Recorded, new_id, utcnow
from door_firmware_bridge.offline import FeedError, FeedSource, FileFeedSource, HttpFeedSource, OfflineCache
from door_firmware_bridge.supervisor import Outcome, Supervisor
from door_firmware_bridge.uploader import Uploader

log = logging.getLogger(__name__)
STATUS_FILE = "status.json"


@dataclass(frozen=True)
class Transaction:
    decision: Decision
    outcome: Outcome | None


class Bridge:
    def __init__(self, cfg: BridgeConfig, feed: FeedSource | None = None) -> None:
        self.cfg = cfg
        self.journal = Journal(cfg.journal.path)
        self.writer = JournalWriter(self.journal)
        self.offline = OfflineCache(cfg.offline.root_public_key, cfg.service_site_id, cfg.offline.max_staleness_s, cfg.offline.cache_dir) if cfg.offline.enabled else None
        if self.offline is not None:
            self.offline.load_persisted()  # a restart while the service is away still has the last verified feed
        self.online = OnlineDecider(cfg.service)
        self.decider = Decider(self.online, self.offline)
        self.feed = feed or self._feed_source()
        self.uploader = Uploader(self.journal, cfg.service, cfg.journal)
        mqtt_doors = [d for d in cfg.doors if d.adapter is AdapterKind.mqtt]
        isapi_doors = [d for d in cfg.doors if d.adapter is AdapterKind.isapi]
        self.mqtt = MqttAdapter(cfg.site, cfg.broker, cfg.client_id, mqtt_doors) if mqtt_doors else None
        self.isapi = IsapiAdapter(cfg.listener, isapi_doors, self.journal) if isapi_doors else None
        self.cameras = [CameraAdapter(d, d.camera) for d in cfg.doors if d.camera is not None]
        actuators: dict[str, Any] = {d.name: self.mqtt for d in mqtt_doors} | {d.name: self.isapi for d in isapi_doors}
        self.supervisor = Supervisor(cfg.doors, actuators, self.record)
        self.adapters: list[Adapter] = [a for a in (self.mqtt, self.isapi, *self.cameras) if a is not None]
        self._doors = {d.name: d for d in cfg.doors}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.feed_error: str | None = None
        self._stale_reported = False
        self._nudge = asyncio.Event()

    def _feed_source(self) -> FeedSource | None:
        offline = self.cfg.offline
        if not offline.enabled:
            return None
        if offline.feed is FeedKind.file:
            assert offline.feed_dir is not None
            return FileFeedSource(offline.feed_dir)
        return HttpFeedSource(self.cfg.service.url, self.cfg.service.key(), self.cfg.service_site_id, self.cfg.service.timeout_s * 2)

    # --- journal ------------------------------------------------------------------------------

    def record(self, kind: str, door: DoorConfig | None = None, *, person_id: int | None = None, **data: Any) -> asyncio.Future[Entry]:
        """Journal an event; await the result to know it is on disk."""
        return self.writer.submit(Entry(new_id(), kind, utcnow(), door.door_id if door else None, person_id, data))

    # --- events from adapters -----------------------------------------------------------------

    async def handle(self, event: DeviceEvent) -> None:
        if isinstance(event, Presented):
            task = asyncio.get_running_loop().create_task(self.transaction(event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(event, CommandResult):
            await self.supervisor.on_result(event)
        elif isinstance(event, DoorState):
            await self.supervisor.on_state(event)
        elif isinstance(event, Availability):
            await self.supervisor.on_availability(event)
        elif isinstance(event, Recorded):
            door = self._doors.get(event.door) if event.door else None
            self.writer.submit(Entry(new_id(), event.kind, event.at, door.door_id if door else None, None, event.data))

    async def transaction(self, presented: Presented) -> Transaction | None:
        door = self._doors.get(presented.door)
        if door is None:
            return None
        kind = presented_kind(presented)
        # People are measured, vehicles are not: a plate read alone is never held to the temperature gate.
        person = presented.qr is not None or presented.face_jpeg is not None
        verdict = temperature.check(self.cfg.temperature, presented, door.require_temperature) if person and (door.require_temperature or presented.temperature) else None
        if (utcnow() - presented.at).total_seconds() > door.command_ttl_s:
            decision: Decision | None = Decision.deny("bridge", kind, "presentation_late")  # e.g. a terminal re-posting old events
        elif verdict is not None and verdict.reasons:
            # Refused before asking anyone: the pass is not used up and the service logs no allow.
            decision = Decision.deny("bridge", kind, *verdict.reasons)
            if verdict.alarm:
                self.record(verdict.alarm, door, alarm=True, **verdict.to_dict())
        else:
            decision = await self.decider.decide(door, presented)
        if decision is None:
            self.record("plate_read", door, plate=presented.plate, confidence=presented.plate_confidence)
            return None
        if decision.allow and time.monotonic() - presented.mono > door.command_ttl_s:
            decision = decision.with_reasons("decision_late")
        await self.record(
            "access_granted" if decision.allow else "access_denied", door, person_id=decision.person_id,
            decision_id=decision.decision_id, source=decision.source, credential=decision.credential, reasons=list(decision.reasons),
            versions=decision.versions, temperature=verdict.to_dict() if verdict else None, device_serial=presented.device_serial,
        )
        outcome = await self.supervisor.pulse(door, decision) if decision.allow else None
        if self.mqtt is not None and door.adapter is AdapterKind.mqtt:
            await self.mqtt.publish_event(door, "access_granted" if decision.allow else "access_denied",
                                          {"decision_id": decision.decision_id, "reasons": list(decision.reasons), "outcome": outcome.status if outcome else None})
        return Transaction(decision, outcome)

    # --- offline feed -------------------------------------------------------------------------

    async def refresh_feed(self) -> bool:
        """Fetch and apply the next feed document; False (and the verified copy kept) on any failure."""
        if self.offline is None or self.feed is None:
            return False
        since = self.offline.since
        try:
            document = await self.feed.fetch(since)
            state = await asyncio.to_thread(self.offline.apply, document)
        except FeedError as exc:
            self.feed_error = exc.code
            self.record("feed_refused", None, code=exc.code, message=str(exc), alarm=True)
            if exc.code == "feed_gap":
                self.offline.want_snapshot()
            return False
        except Exception as exc:  # unreachable service or missing file: keep the verified copy we have
            self.feed_error = type(exc).__name__
            return False
        if self.feed_error or self._stale_reported:
            self.record("cache_fresh", None, versions=self.offline.versions)
        self.feed_error, self._stale_reported = None, False
        return state.version != since

    async def _feed_loop(self) -> None:
        assert self.offline is not None
        while True:
            self._nudge.clear()
            await self.refresh_feed()
            age = self.offline.staleness_s(utcnow())
            if (age is None or age > self.offline.max_staleness_s) and not self._stale_reported:
                self._stale_reported = True
                self.record("cache_stale", None, age_s=None if age is None else int(age), limit_s=self.offline.max_staleness_s, alarm=True,
                            note="offline QR passes are refused until the feed is refreshed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), self.cfg.offline.refresh_s)

    async def _announcements(self) -> None:
        """Listen to the service's feed versions (SSE) and fetch at once when one is newer than ours."""
        assert self.offline is not None and isinstance(self.feed, HttpFeedSource)
        while True:
            try:
                async for version in self.feed.versions():
                    if self.offline.state is None or version > self.offline.state.version:
                        self._nudge.set()
            except Exception as exc:  # the stream is only a hint: polling covers its absence
                log.debug("feed version stream ended: %s", exc)
            await asyncio.sleep(2.0)

    # --- status and running -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        age = self.offline.staleness_s(utcnow()) if self.offline else None
        return {
            "site": self.cfg.site,
            "at": utcnow().isoformat(),
            "adapters": {type(a).__name__ + (f":{a.doors[0].name}" if isinstance(a, CameraAdapter) else ""): a.health() for a in self.adapters},
            "doors": self.supervisor.door_status(),
            "offline": {"versions": self.offline.versions if self.offline else None, "age_s": None if age is None else int(age), "max_staleness_s": self.cfg.offline.max_staleness_s, "feed_error": self.feed_error},
            "journal": self.journal.counts(),
            "upload_error": self.uploader.last_error,
        }

    async def _status_loop(self) -> None:
        path = self.cfg.offline.cache_dir / STATUS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = path.with_suffix(".tmp")
            await asyncio.to_thread(tmp.write_text, json.dumps(self.status(), indent=2, default=str))
            tmp.replace(path)
            await asyncio.sleep(5)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.writer.run())
                await self.record("bridge_started", None, doors=[d.name for d in self.cfg.doors])
                group.create_task(self.uploader.run())
                group.create_task(self._status_loop())
                if self.offline is not None:
                    group.create_task(self._feed_loop())
                    if isinstance(self.feed, HttpFeedSource):
                        group.create_task(self._announcements())
                for adapter in self.adapters:
                    group.create_task(adapter.run(self.handle))
        finally:
            await self.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.supervisor.close()
        with contextlib.suppress(Exception):
            await self.online.aclose()
            await self.uploader.aclose()
            if isinstance(self.feed, HttpFeedSource):
                await self.feed.aclose()
        self.journal.close()
