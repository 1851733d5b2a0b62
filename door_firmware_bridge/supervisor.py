"""The actuation supervisor: the only code that opens doors, and the keeper of design/bridge.md's rules.

- a pulse goes out only for an allow decision (the bridge calls :meth:`Supervisor.pulse` for nothing else);
- one command in flight per door; a second allow while one is in flight is refused ``rejected_busy``;
- the command expires (``expires_at``, MQTT message expiry) and is never queued while the device or
  broker is away: the adapter raises :class:`DeviceUnavailable` and the result is ``not_sent``;
- ``command_sent`` is on disk before the command leaves, and every command ends in a journalled
  ``command_result``: the device's own answer, ``timeout_unknown`` (with a ``command_timeout``
  alarm, never retried), or ``unknown`` after a restart (:mod:`door_firmware_bridge.recovery`);
- locks that do not relock themselves (Nuki without Auto Lock, Zigbee locks) are relocked by the
  bridge after the pulse, once the door is closed; every relock is journalled (``door_relocked``);
- door contact: opening outside an authorised window is ``door_forced``; open longer than
  ``held_open_s`` is ``door_held_open``; a lock still unlocked after pulse + grace is ``relock_overdue``.
  The first state a device reports (its retained state, after a start or a reconnect) is a
  baseline, never a "forced" transition: a door found open is ``door_open_at_start`` unless an
  unconfirmed command from before a restart explains it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from door_firmware_bridge import faults
from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Availability, Command, CommandResult, Decision, DoorState, LocalUnlock

BATTERY_LOW = 20
UNLOCKED = ("unlocked", "unlocking")

Record = Callable[..., Awaitable[Any]]  # (kind, door=DoorConfig|None, **data); await it to know it is on disk


class DeviceUnavailable(Exception):
    """The command could not be handed to the device now (broker down, device offline); never queued."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Actuator(Protocol):
    async def send(self, door: DoorConfig, cmd: Command) -> None:
        """Hand the command to the device, or raise DeviceUnavailable. Success is not confirmation."""

    def relocks_itself(self, door: DoorConfig) -> bool:
        """Whether the device ends the pulse itself (PulseTime, door-open time) or the bridge must lock it."""


@dataclass(frozen=True)
class Outcome:
    status: str  # executed, rejected_*, device_error, timeout_unknown, not_sent
    cmd_id: str | None
    lock_state: str | None = None  # as the device reported it with its result
    detail: str | None = None  # why not sent: broker_disconnected, device_offline, ...

    @property
    def may_have_opened(self) -> bool:
        """Executed, or unconfirmed (the device may have run it): the door may open for the pulse."""
        return self.status in ("executed", "timeout_unknown")


@dataclass
class _Door:
    cfg: DoorConfig
    relocks_itself: bool = True
    inflight: tuple[Command, asyncio.Future[CommandResult]] | None = None
    authorised_until: float = float("-inf")  # monotonic: door may open until then
    unlocked_at: float | None = None  # monotonic: last command that may have unlocked it
    lock: str | None = None  # None: the device has not reported yet
    was_unlocked: bool = False  # reported unlocked since it last reported locked
    contact: str | None = None
    battery_low: bool = False
    tamper: bool = False
    online: bool | None = None  # None: never heard from (status shows "unknown", not "online")
    opened_at: float | None = None
    relock_task: asyncio.Task[None] | None = None
    contact_changed: asyncio.Event = field(default_factory=asyncio.Event)
    timers: set[asyncio.Task[None]] = field(default_factory=set)


class Supervisor:
    def __init__(self, doors: list[DoorConfig], actuators: dict[str, Actuator], record: Record) -> None:
        self._doors = {d.name: _Door(d, actuators[d.name].relocks_itself(d)) for d in doors if d.name in actuators}
        self._actuators = actuators
        self._record = record
        self._timed_out: deque[str] = deque(maxlen=1024)  # to tell a late answer from a stray one

    def door_status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"lock": d.lock, "contact": d.contact, "online": d.online, "in_flight": d.inflight[0].cmd_id if d.inflight else None}
            for name, d in self._doors.items()
        }

    # --- after a restart ----------------------------------------------------------------------

    def recovered(self, name: str, open_for_s: float, cmd_ids: list[str]) -> None:
        """Commands of the previous run whose outcome is unknown: the door may open for ``open_for_s``
        more seconds without it being forced, a late answer is journalled as such, and a lock the
        bridge must relock is relocked once its state is known."""
        door = self._doors.get(name)
        if door is None:
            return
        now = time.monotonic()
        door.authorised_until = max(door.authorised_until, now + open_for_s)
        door.unlocked_at = now
        self._timed_out.extend(cmd_ids)
        if not door.relocks_itself:
            self._schedule_relock(door, open_for_s)

    # --- commands -----------------------------------------------------------------------------

    async def pulse(self, cfg: DoorConfig, decision: Decision, cmd: Command | None = None) -> Outcome:
        """Unlock for the door's pulse; ``cmd`` may carry what the device waits for (a remote check)."""
        if not decision.allow:
            raise ValueError("the supervisor only pulses on an allow decision")
        door = self._doors[cfg.name]
        cmd = cmd or Command.pulse(cfg.pulse_s, cfg.command_ttl_s, decision.decision_id)
        outcome = await self._run(door, cmd)
        if outcome.may_have_opened:
            self._opened(door)
        return outcome

    async def _run(self, door: _Door, cmd: Command) -> Outcome:
        cfg = door.cfg
        if door.inflight is not None:
            return await self._finish(door, cmd, Outcome("rejected_busy", None))
        if door.online is False:
            return await self._finish(door, cmd, Outcome("not_sent", None, detail="device_offline"))
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        door.inflight = (cmd, future)
        try:
            # On disk before it leaves: after a crash, the next start knows a command may have run.
            await self._record("command_sent", cfg, cmd_id=cmd.cmd_id, action=cmd.action, decision_id=cmd.decision_id,
                               expires_at=cmd.expires_at.isoformat(), duration_s=cmd.duration_s)
            faults.checkpoint("command_journalled")
            try:
                await self._actuators[cfg.name].send(cfg, cmd)
            except DeviceUnavailable as exc:
                return await self._finish(door, cmd, Outcome("not_sent", cmd.cmd_id, detail=exc.code))
            faults.checkpoint("command_sent")
            try:
                # asyncio's clock is monotonic: a wall-clock jump cannot stretch or cut the deadline.
                async with asyncio.timeout(cfg.ack_timeout_s):
                    result = await asyncio.shield(future)
            except TimeoutError:
                self._timed_out.append(cmd.cmd_id)
                await self._record("command_timeout", cfg, cmd_id=cmd.cmd_id, action=cmd.action, decision_id=cmd.decision_id, alarm=True,
                                   note="no confirmation from the device; the door state is unknown and the command is not retried")
                return await self._finish(door, cmd, Outcome("timeout_unknown", cmd.cmd_id))
            faults.checkpoint("result_received")
            return await self._finish(door, cmd, Outcome(result.status, cmd.cmd_id, result.lock_state))
        finally:
            door.inflight = None

    async def _finish(self, door: _Door, cmd: Command, outcome: Outcome) -> Outcome:
        await self._record("command_result", door.cfg, cmd_id=outcome.cmd_id, action=cmd.action, status=outcome.status,
                           lock_state=outcome.lock_state, detail=outcome.detail, decision_id=cmd.decision_id)
        return outcome

    def _opened(self, door: _Door) -> None:
        # An unconfirmed command may still have run: opening in its window is not reported as forced.
        now = time.monotonic()
        window = door.cfg.pulse_s + door.cfg.relock_grace_s
        door.authorised_until = max(door.authorised_until, now + window)
        door.unlocked_at = now
        if door.relocks_itself:
            self._later(door, window, self._check_relocked, now)
        else:
            self._schedule_relock(door, door.cfg.pulse_s)

    # --- relocking locks that do not relock themselves ----------------------------------------

    def _schedule_relock(self, door: _Door, after_s: float) -> None:
        if door.relock_task is not None and not door.relock_task.done():
            door.relock_task.cancel()  # a newer pulse starts the wait again
        door.relock_task = asyncio.get_running_loop().create_task(self._relock(door, after_s))
        door.timers.add(door.relock_task)
        door.relock_task.add_done_callback(door.timers.discard)

    async def _relock(self, door: _Door, after_s: float) -> None:
        await asyncio.sleep(after_s)
        while door.contact == "open":  # never throw the bolt into an open door: wait for it to close
            door.contact_changed.clear()
            await door.contact_changed.wait()
        started = time.monotonic()
        outcome = await self._run(door, Command.lock(door.cfg.command_ttl_s, None))
        if outcome.status != "executed":
            await self._record("relock_failed", door.cfg, status=outcome.status, detail=outcome.detail, alarm=True,
                               note="the lock may still be unlocked: check it on site (its own auto-lock is the backstop)")
            return
        self._later(door, door.cfg.relock_grace_s, self._check_relocked, started)

    async def _check_relocked(self, door: _Door, since: float) -> None:
        # Only devices that report lock state can be checked; the pulse itself relocks on the device.
        if door.lock in UNLOCKED and door.authorised_until <= time.monotonic() + 0.05:
            await self._record("relock_overdue", door.cfg, lock=door.lock, alarm=True, seconds_since_unlock=round(time.monotonic() - since, 1))

    # --- what devices report ------------------------------------------------------------------

    async def on_result(self, result: CommandResult) -> None:
        door = self._doors.get(result.door)
        if door is None:
            return
        inflight = door.inflight
        if (inflight is not None and result.cmd_id in (None, inflight[0].cmd_id) and result.action in (None, inflight[0].action)
                and not inflight[1].done()):
            inflight[1].set_result(result)
            return
        if result.implicit:
            return  # a state report that confirms nothing in flight: the state itself has gone to on_state
        # Not the command we are waiting for: a QoS 1 duplicate, or a device answering after our deadline.
        late = result.cmd_id in self._timed_out
        await self._record("command_late_result" if late else "command_ack_ignored", door.cfg, cmd_id=result.cmd_id, status=result.status, duplicate=result.duplicate, alarm=late)

    async def on_local_unlock(self, event: LocalUnlock) -> None:
        """Unlocked at the device (keypad, fob, app): the opening that follows is not forced, and a lock
        the bridge relocks is relocked after the pulse like after its own command."""
        door = self._doors.get(event.door)
        if door is None:
            return
        await self._record("device_local_unlock", door.cfg, how=event.how)
        self._opened(door)

    async def on_availability(self, event: Availability) -> None:
        door = self._doors.get(event.door)
        if door is None or door.online == event.online:
            return
        first, door.online = door.online is None, event.online
        if first and event.online:
            return  # the first word from a device that is there is not news
        await self._record("device_online" if event.online else "device_offline", door.cfg, alarm=not event.online)

    async def on_state(self, state: DoorState) -> None:
        door = self._doors.get(state.door)
        if door is None:
            return
        if state.lock is not None and state.lock != door.lock:
            await self._lock_state(door, state.lock)
        if state.battery is not None and (state.battery < BATTERY_LOW) != door.battery_low:
            door.battery_low = state.battery < BATTERY_LOW
            if door.battery_low:
                await self._record("battery_low", door.cfg, battery=state.battery, alarm=True)
        if state.tamper is not None and state.tamper != door.tamper:
            door.tamper = state.tamper
            if state.tamper:
                await self._record("tamper", door.cfg, alarm=True)
        if state.contact is not None and state.contact != door.contact:
            await self._contact(door, state.contact)

    async def _lock_state(self, door: _Door, lock: str) -> None:
        previous, door.lock = door.lock, lock
        relocked, door.was_unlocked = lock == "locked" and door.was_unlocked, lock in UNLOCKED or (door.was_unlocked and lock != "locked")
        if lock == "jammed":
            await self._record("lock_jammed", door.cfg, alarm=True)
        elif relocked:  # unlocked -> (locking ->) locked
            since = round(time.monotonic() - door.unlocked_at, 1) if door.unlocked_at is not None else None
            await self._record("door_relocked", door.cfg, seconds_since_unlock=since, by="device" if door.relocks_itself else "bridge")
        elif previous is None and lock in UNLOCKED and not door.relocks_itself and door.relock_task is None and door.inflight is None:
            # Found unlocked at start (its retained state) and nobody else will lock it: the bridge does.
            self._schedule_relock(door, max(0.0, door.authorised_until - time.monotonic()))

    async def _contact(self, door: _Door, contact: str) -> None:
        previous, door.contact = door.contact, contact
        door.contact_changed.set()
        now = time.monotonic()
        authorised = door.inflight is not None or now <= door.authorised_until
        if contact == "open":
            door.opened_at = now
            if previous is None:
                # The retained state after a start: how the door is, not something that just happened.
                if authorised:
                    await self._record("door_opened", door.cfg, baseline=True, note="open at start, within the window of a command from before the restart")
                else:
                    await self._record("door_open_at_start", door.cfg, alarm=True, note="found open when the bridge started; not known whether it was forced")
            else:
                await self._record("door_opened" if authorised else "door_forced", door.cfg, alarm=not authorised)
            self._later(door, door.cfg.held_open_s, self._check_held_open, now)
        elif contact == "closed" and previous == "open":
            door.opened_at = None
            await self._record("door_closed", door.cfg)
        elif contact == "fault":
            await self._record("door_contact_fault", door.cfg, alarm=True)

    async def _check_held_open(self, door: _Door, opened_at: float) -> None:
        if door.contact == "open" and door.opened_at == opened_at:
            await self._record("door_held_open", door.cfg, alarm=True, open_s=round(time.monotonic() - opened_at, 1))

    def _later(self, door: _Door, delay: float, check: Callable[[_Door, float], Awaitable[None]], since: float) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await check(door, since)

        task = asyncio.get_running_loop().create_task(run())
        door.timers.add(task)
        task.add_done_callback(door.timers.discard)

    async def close(self) -> None:
        for door in self._doors.values():
            for task in list(door.timers):
                task.cancel()
