"""The actuation supervisor: the only code that opens doors, and the keeper of design/bridge.md's rules.

- a pulse goes out only for an allow decision (the bridge calls :meth:`Supervisor.pulse` for nothing else);
- one command in flight per door; a second allow while one is in flight is refused ``rejected_busy``;
- the command expires (``expires_at``, MQTT message expiry) and is never queued while the device or
  broker is away: the adapter raises :class:`DeviceUnavailable` and the result is ``not_sent``;
- success comes only from the device's own result; no answer by the deadline (monotonic clock) is
  ``timeout_unknown`` with a ``command_timeout`` alarm, and the command is never retried;
- door contact: opening outside an authorised window is ``door_forced``; open longer than
  ``held_open_s`` is ``door_held_open``; a lock still unlocked after pulse + grace is ``relock_overdue``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from door_firmware_bridge.config import DoorConfig
from door_firmware_bridge.model import Availability, Command, CommandResult, Decision, DoorState

BATTERY_LOW = 20

Record = Callable[..., Awaitable[Any]]  # (kind, door=DoorConfig|None, **data); await it to know it is on disk


class DeviceUnavailable(Exception):
    """The command could not be handed to the device now (broker down, device offline); never queued."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Actuator(Protocol):
    async def send(self, door: DoorConfig, cmd: Command) -> None:
        """Hand the command to the device, or raise DeviceUnavailable. Success is not confirmation."""


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
    inflight: tuple[Command, asyncio.Future[CommandResult]] | None = None
    authorised_until: float = float("-inf")  # monotonic: door may open until then
    lock: str | None = None
    contact: str | None = None
    battery_low: bool = False
    tamper: bool = False
    online: bool = True
    opened_at: float | None = None
    timers: set[asyncio.Task[None]] = field(default_factory=set)


class Supervisor:
    def __init__(self, doors: list[DoorConfig], actuators: dict[str, Actuator], record: Record) -> None:
        self._doors = {d.name: _Door(d) for d in doors}
        self._actuators = actuators
        self._record = record
        self._timed_out: deque[str] = deque(maxlen=1024)  # to tell a late answer from a stray one

    def door_status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"lock": d.lock, "contact": d.contact, "online": d.online, "in_flight": d.inflight[0].cmd_id if d.inflight else None}
            for name, d in self._doors.items()
        }

    async def pulse(self, cfg: DoorConfig, decision: Decision) -> Outcome:
        if not decision.allow:
            raise ValueError("the supervisor only pulses on an allow decision")
        door = self._doors[cfg.name]
        if door.inflight is not None:
            return await self._finish(door, Outcome("rejected_busy", None), decision)
        if not door.online:
            return await self._finish(door, Outcome("not_sent", None, detail="device_offline"), decision)
        cmd = Command.pulse(cfg.pulse_s, cfg.command_ttl_s, decision.decision_id)
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        door.inflight = (cmd, future)
        try:
            # Journalled in order but not awaited: the allow decision is on disk already (the bridge awaited it).
            self._record("command_sent", cfg, cmd_id=cmd.cmd_id, decision_id=decision.decision_id, expires_at=cmd.expires_at.isoformat(), duration_s=cmd.duration_s)
            try:
                await self._actuators[cfg.name].send(cfg, cmd)
            except DeviceUnavailable as exc:
                return await self._finish(door, Outcome("not_sent", cmd.cmd_id, detail=exc.code), decision)
            try:
                # asyncio's clock is monotonic: a wall-clock jump cannot stretch or cut the deadline.
                result = await asyncio.wait_for(asyncio.shield(future), timeout=cfg.ack_timeout_s)
            except TimeoutError:
                self._timed_out.append(cmd.cmd_id)
                await self._record("command_timeout", cfg, cmd_id=cmd.cmd_id, decision_id=decision.decision_id, alarm=True,
                                   note="no confirmation from the device; the door state is unknown and the command is not retried")
                return await self._finish(door, Outcome("timeout_unknown", cmd.cmd_id), decision)
            return await self._finish(door, Outcome(result.status, cmd.cmd_id, result.lock_state), decision)
        finally:
            door.inflight = None

    async def _finish(self, door: _Door, outcome: Outcome, decision: Decision) -> Outcome:
        # An unconfirmed command may still have run: opening in its window is not reported as forced.
        if outcome.may_have_opened:
            now = time.monotonic()
            door.authorised_until = max(door.authorised_until, now + door.cfg.pulse_s + door.cfg.relock_grace_s)
            self._later(door, door.cfg.pulse_s + door.cfg.relock_grace_s, self._check_relocked, now)
        await self._record("command_result", door.cfg, cmd_id=outcome.cmd_id, status=outcome.status, lock_state=outcome.lock_state,
                           detail=outcome.detail, decision_id=decision.decision_id)
        return outcome

    def _later(self, door: _Door, delay: float, check: Callable[[_Door, float], Awaitable[None]], since: float) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await check(door, since)

        task = asyncio.get_running_loop().create_task(run())
        door.timers.add(task)
        task.add_done_callback(door.timers.discard)

    async def _check_relocked(self, door: _Door, since: float) -> None:
        # Only devices that report lock state can be checked; the pulse itself relocks on the device.
        if door.lock in ("unlocked", "unlocking") and door.authorised_until <= time.monotonic() + 0.05:
            await self._record("relock_overdue", door.cfg, lock=door.lock, alarm=True, seconds_since_unlock=round(time.monotonic() - since, 1))

    async def on_result(self, result: CommandResult) -> None:
        door = self._doors.get(result.door)
        if door is None:
            return
        if door.inflight is not None and result.cmd_id in (None, door.inflight[0].cmd_id) and not door.inflight[1].done():
            door.inflight[1].set_result(result)
            if result.lock_state:
                door.lock = result.lock_state
            return
        # Not the command we are waiting for: a QoS 1 duplicate, or a device answering after our deadline.
        late = result.cmd_id in self._timed_out
        await self._record("command_late_result" if late else "command_ack_ignored", door.cfg, cmd_id=result.cmd_id, status=result.status, duplicate=result.duplicate, alarm=late)

    async def on_availability(self, event: Availability) -> None:
        door = self._doors.get(event.door)
        if door is None or door.online == event.online:
            return
        door.online = event.online
        await self._record("device_online" if event.online else "device_offline", door.cfg, alarm=not event.online)

    async def on_state(self, state: DoorState) -> None:
        door = self._doors.get(state.door)
        if door is None:
            return
        if state.lock is not None and state.lock != door.lock:
            door.lock = state.lock
            if state.lock == "jammed":
                await self._record("lock_jammed", door.cfg, alarm=True)
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

    async def _contact(self, door: _Door, contact: str) -> None:
        previous, door.contact = door.contact, contact
        now = time.monotonic()
        if contact == "open":
            authorised = door.inflight is not None or now <= door.authorised_until
            door.opened_at = now
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

    async def close(self) -> None:
        for door in self._doors.values():
            for task in list(door.timers):
                task.cancel()
