"""The bridge process: adapters feed events in, decisions are journalled, the supervisor acts.

A presentation's path: evidence the bridge can judge alone is refused here (a terminal clock too far
from ours, a temperature reading that is missing, bad, not this person's or already used) -> the
decider (service, else offline cache) -> the decision is journalled durably -> only then, for an
allow, the supervisor pulses the door (or, for a terminal waiting for a remote verdict, answers it).
Everything else a device says goes to the supervisor (acks, state, availability) or straight to the
journal. At start, unlocks the previous run left unfinished are settled first (recovery.py). The
feed loop keeps the offline cache fresh; a watch raises ``cache_stale`` the moment it goes stale;
the uploader drains the journal to the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from door_firmware_bridge import clock, faults, recovery, temperature
from door_firmware_bridge.adapters.base import Adapter
from door_firmware_bridge.adapters.camera import CameraAdapter
from door_firmware_bridge.adapters.dahua import DahuaAdapter
from door_firmware_bridge.adapters.isapi import IsapiAdapter
from door_firmware_bridge.adapters.mqtt import MqttAdapter
from door_firmware_bridge.config import Adapter as AdapterKind
from door_firmware_bridge.config import BridgeConfig, DoorConfig, FeedKind
from door_firmware_bridge.decisions import Decider, OnlineDecider, presented_kind
from door_firmware_bridge.journal import Entry, Journal, JournalWriter
from door_firmware_bridge.model import Availability, Command, CommandResult, Decision, DeviceEvent, DoorState, LocalDecision, LocalUnlock, Presented, Recorded, new_id, utcnow
from door_firmware_bridge.offline import FeedError, FeedSource, FileFeedSource, HttpFeedSource, OfflineCache
from door_firmware_bridge.offline_faces import OfflineFaces, load_calibration
from door_firmware_bridge.supervisor import Outcome, Supervisor
from door_firmware_bridge.uploader import Uploader
from idsvc.config import Settings

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
        self.offline = OfflineCache(cfg.offline.root_public_key, cfg.service_site_id, cfg.offline.max_staleness_s, cfg.offline.cache_dir,
                                    uses=self.journal.offline_uses, site_key=cfg.offline.site_key(), faces=self._offline_faces()) if cfg.offline.enabled else None
        if self.offline is not None:
            self.offline.load_persisted()  # a restart while the service is away still has the last verified feed
        self.online = OnlineDecider(cfg.service)
        self.decider = Decider(self.online, self.offline)
        self.feed = feed or self._feed_source()
        self.uploader = Uploader(self.journal, cfg.service, cfg.journal)
        mqtt_doors = [d for d in cfg.doors if d.adapter is AdapterKind.mqtt]
        isapi_doors = [d for d in cfg.doors if d.adapter is AdapterKind.isapi]
        dahua_doors = [d for d in cfg.doors if d.adapter is AdapterKind.dahua]
        self.mqtt = MqttAdapter(cfg.site, cfg.broker, cfg.client_id, mqtt_doors) if mqtt_doors else None
        self.isapi = IsapiAdapter(cfg.listener, isapi_doors, self.journal, lambda: self.offline.state if self.offline else None) if isapi_doors else None
        self.dahua = DahuaAdapter(dahua_doors, self.journal) if dahua_doors else None
        self.cameras = [CameraAdapter(d, d.camera) for d in cfg.doors if d.camera is not None]
        self.actuators: dict[str, Any] = {d.name: self.mqtt for d in mqtt_doors} | {d.name: self.isapi for d in isapi_doors} | {d.name: self.dahua for d in dahua_doors}
        self.supervisor = Supervisor(cfg.doors, self.actuators, self.record)
        self.adapters: list[Adapter] = [a for a in (self.mqtt, self.isapi, self.dahua, *self.cameras) if a is not None]
        self.readings = temperature.ReadingLedger()
        self._doors = {d.name: d for d in cfg.doors}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.feed_error: str | None = None
        self._stale_reported = False
        self._nudge = asyncio.Event()
        self._feed_changed = asyncio.Event()
        self._first_fetch = asyncio.Event()  # the stale watch judges after the first fetch, not before it
        self._skewed: set[str] = set()  # device sources whose clock alarm is raised

    def _offline_faces(self) -> OfflineFaces | None:
        key = self.cfg.offline.site_key()
        if not self.cfg.offline.faces or key is None:
            return None
        from door_firmware_bridge.adapters.camera import face_detector  # the face pack loads only where it is used

        return OfflineFaces(face_detector(), key, load_calibration(Settings()))

    def _feed_source(self) -> FeedSource | None:
        offline = self.cfg.offline
        if not offline.enabled:
            return None
        if offline.feed is FeedKind.file:
            assert offline.feed_dir is not None
            return FileFeedSource(offline.feed_dir)
        return HttpFeedSource(self.cfg.service.url, self.cfg.service.key(), self.cfg.service_site_id, self.cfg.service.timeout_s * 2)

    @property
    def max_clock_skew_s(self) -> float:
        """The site's bound (signed feed), or the default before any feed is held."""
        state = self.offline.state if self.offline is not None else None
        value = state.bridge.get("max_clock_skew_s") if state is not None else None
        return float(value) if isinstance(value, int | float) else clock.DEFAULT_MAX_SKEW_S

    # --- journal ------------------------------------------------------------------------------

    def record(self, kind: str, door: DoorConfig | None = None, *, person_id: int | None = None, **data: Any) -> asyncio.Future[Entry]:
        """Journal an event; await the result to know it is on disk."""
        return self.writer.submit(Entry(new_id(), kind, utcnow(), door.door_id if door else None, person_id, data))

    def settle_previous_run(self) -> None:
        """Before any device is heard: a result for every unlock the previous run left open."""
        now = utcnow()
        for unfinished in recovery.settle(self.journal, self.cfg.doors, now):
            if unfinished.door is not None and unfinished.cmd_id is not None:
                self.supervisor.recovered(unfinished.door.name, recovery.open_for_s(unfinished, now), [unfinished.cmd_id])

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
        elif isinstance(event, LocalUnlock):
            await self.supervisor.on_local_unlock(event)
        elif isinstance(event, LocalDecision):
            self._journal_local_decision(event)
        elif isinstance(event, Recorded):
            door = self._doors.get(event.door) if event.door else None
            self.writer.submit(Entry(new_id(), event.kind, event.at, door.door_id if door else None, None, event.data))

    def _journal_local_decision(self, event: LocalDecision) -> None:
        """A terminal decided alone: journalled with its temperature judged by the site's policy; a high
        reading is a fever alarm whether or not the terminal let the person in."""
        door = self._doors.get(event.door)
        door_id = door.door_id if door else None
        verdict = temperature.judge(self.cfg.temperature, event.reading) if event.reading is not None else None
        data = event.data | {"source": "device", "granted": event.granted, "temperature": verdict.to_dict() if verdict else None}
        self.writer.submit(Entry(new_id(), "device_access_event", event.at, door_id, None, data))
        if verdict is not None and verdict.alarm == "fever_detected" and event.granted is not None:
            self.writer.submit(Entry(new_id(), "fever_detected", event.at, door_id, None, {
                "temperature": verdict.to_dict(), "advice": temperature.ADVICE, "alarm": True, "source": "device",
                "admitted_by_terminal": event.granted, "event": event.data.get("event")}))

    def _bridge_refusal(self, door: DoorConfig, presented: Presented) -> tuple[list[str], temperature.Verdict | None]:
        """What the bridge refuses without asking anyone: the terminal's clock, the temperature gate."""
        reasons = []
        skew = clock.skew_reason(presented.at, presented.received_at, self.max_clock_skew_s)
        if skew is not None:
            reasons.append(skew)
            if presented.source not in self._skewed:  # once per device until its clock is right again
                self._skewed.add(presented.source)
                self.record("device_clock_skew", door, alarm=True, source=presented.source, skew_s=round((presented.at - presented.received_at).total_seconds(), 1),
                            limit_s=self.max_clock_skew_s, note="set the terminal's clock (NTP); its presentations are refused until then")
        elif presented.source in self._skewed:
            self._skewed.discard(presented.source)
            self.record("device_clock_ok", door, source=presented.source)
        # People are measured, vehicles are not: a plate read alone is never held to the temperature gate.
        person = presented.qr is not None or presented.face_jpeg is not None or presented.remote_check is not None
        verdict = None
        if person and (door.require_temperature or presented.temperature):
            verdict = temperature.check(self.cfg.temperature, presented, door.require_temperature, self.readings)
            reasons += verdict.reasons
            if verdict.alarm:
                self.record(verdict.alarm, door, alarm=True, temperature=verdict.to_dict(), advice=temperature.ADVICE)
        return reasons, verdict

    async def transaction(self, presented: Presented) -> Transaction | None:
        door = self._doors.get(presented.door)
        if door is None:
            return None
        kind = presented_kind(presented)
        refusal, verdict = self._bridge_refusal(door, presented)
        if refusal:
            # Refused before asking anyone: the pass is not used up and the service logs no allow.
            decision: Decision | None = Decision.deny("bridge", kind, *refusal)
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
        faults.checkpoint("decision_journalled")
        outcome = None
        if decision.allow:
            cmd = Command.pulse(door.pulse_s, door.command_ttl_s, decision.decision_id, presented.remote_check)
            outcome = await self.supervisor.pulse(door, decision, cmd)
        if presented.remote_check is not None and (outcome is None or not outcome.may_have_opened):
            await self._refuse_remote_check(door, presented, decision, outcome)
        if self.mqtt is not None and door.adapter is AdapterKind.mqtt:
            await self.mqtt.publish_event(door, "access_granted" if decision.allow else "access_denied",
                                          {"decision_id": decision.decision_id, "reasons": list(decision.reasons), "outcome": outcome.status if outcome else None})
        return Transaction(decision, outcome)

    async def _refuse_remote_check(self, door: DoorConfig, presented: Presented, decision: Decision, outcome: Outcome | None) -> None:
        """A terminal waiting for a verdict gets one: failed, with the reason on its screen."""
        assert presented.remote_check is not None
        info = ",".join(decision.reasons) if not decision.allow else f"door {outcome.status if outcome else 'not opened'}"
        with contextlib.suppress(Exception):  # the terminal times out by itself and shows a failure anyway
            await self.actuators[door.name].refuse(door, presented.remote_check, info)

    # --- offline feed -------------------------------------------------------------------------

    async def refresh_feed(self) -> bool:
        """Fetch and apply the next feed document; False (and the verified copy kept) on any failure."""
        if self.offline is None or self.feed is None:
            return False
        since = self.offline.since
        fetched = time.time()  # offline uses the service stored before this are counted in what comes back
        try:
            document = await self.feed.fetch(since)
            state = await asyncio.to_thread(self.offline.apply, document)
            await asyncio.to_thread(self.journal.uses_in_feed, fetched)
        except FeedError as exc:
            self.feed_error = exc.code
            self.record("feed_refused", None, code=exc.code, message=str(exc), alarm=True)
            if exc.code == "feed_gap":
                self.offline.want_snapshot()
            return False
        except Exception as exc:  # unreachable service or missing file: keep the verified copy we have
            self.feed_error = type(exc).__name__
            return False
        self.feed_error = None
        self._feed_changed.set()
        if self.isapi is not None:
            self.isapi.feed_changed()
        return state.version != since

    async def _feed_loop(self) -> None:
        while True:
            self._nudge.clear()
            await self.refresh_feed()
            self._first_fetch.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.offline.refresh_s):
                    await self._nudge.wait()

    async def _stale_watch(self) -> None:
        """``cache_stale`` the moment the verified copy passes its age limit (not at the next poll), once;
        ``cache_fresh`` when a newer feed brings it back."""
        assert self.offline is not None
        await self._first_fetch.wait()
        while True:
            self._feed_changed.clear()
            age = self.offline.staleness_s(utcnow())
            stale = age is None or age > self.offline.max_staleness_s
            if stale and not self._stale_reported:
                self._stale_reported = True
                self.record("cache_stale", None, age_s=None if age is None else int(age), limit_s=self.offline.max_staleness_s, alarm=True,
                            note="offline QR passes are refused until the feed is refreshed")
            elif not stale and self._stale_reported:
                self._stale_reported = False
                self.record("cache_fresh", None, versions=self.offline.versions)
            wait = None if stale or age is None else self.offline.max_staleness_s - age + 0.01
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._feed_changed.wait()

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
            self.settle_previous_run()
            async with asyncio.TaskGroup() as group:
                group.create_task(self.writer.run())
                await self.record("bridge_started", None, site=self.cfg.site, site_id=self.cfg.service_site_id, doors=[d.name for d in self.cfg.doors])
                group.create_task(self.uploader.run())
                group.create_task(self._status_loop())
                if self.offline is not None:
                    group.create_task(self._feed_loop())
                    group.create_task(self._stale_watch())
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
