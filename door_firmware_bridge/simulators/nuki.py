"""A Nuki Smart Lock (3.0 Pro / 4th generation) as its MQTT API v1.5 (2024-07-30) describes it.

Written from the API document (the PDF in ubittner/SymconNukiMQTT, docs/), not from the bridge's
profile: retained state topics with QoS 0 (§4.2), ``lockAction`` subscribed with QoS 2 (§4.3), one
command at a time, ``commandResponse`` 0 on success, ``lockActionEvent`` "action,trigger,auth id,
code id,auto-unlock" for every action about to run (trigger 172 = MQTT, §3.7), the lock states of
§3.3 and door sensor states of §3.6, and ``connected`` with ``false`` as the last will.

Mechanics the API implies: unlatch (3) runs 7 unlatching -> 5 unlatched -> 3 unlocked and leaves the
lock unlocked; it locks again only by an explicit lock action or by Auto Lock (an app setting, given
here as ``auto_lock_s``; the app does not allow less than 30 s on a real lock, tests use less).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiomqtt

LOCKED, UNLOCKING, UNLOCKED, LOCKING, UNLATCHED, UNLOCKED_LOCK_N_GO, UNLATCHING, MOTOR_BLOCKED = 1, 2, 3, 4, 5, 6, 7, 254
DOOR_CLOSED, DOOR_OPENED, DOOR_CALIBRATING, DOOR_TAMPERED = 2, 3, 5, 240
TRIGGER_SYSTEM, TRIGGER_BUTTON, TRIGGER_AUTO_LOCK, TRIGGER_MQTT = 0, 2, 6, 172
ERROR_UNKNOWN_ACTION = 0x13  # an error code for an action outside 1-6 (the BLE API's "bad parameter" family)


@dataclass
class NukiSim:
    nuki_id: str  # hex, as printed on the lock
    host: str = "127.0.0.1"
    port: int = 1883
    auto_lock_s: float | None = None  # Auto Lock as set in the Nuki app; None = off
    motor_s: float = 0.3  # how long a motor movement takes
    jammed: bool = False
    battery: int = 80
    door: int = DOOR_CLOSED
    state: int = LOCKED
    actions: list[int] = field(default_factory=list)  # lockAction values received
    states: list[int] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _client: aiomqtt.Client | None = None
    _busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    _auto_lock: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"nuki/{self.nuki_id}"

    async def run(self) -> None:
        will = aiomqtt.Will(f"{self.base}/connected", "false", qos=0, retain=True)
        async with aiomqtt.Client(self.host, self.port, will=will, protocol=aiomqtt.ProtocolVersion.V5, timeout=3) as client:
            self._client = client
            await client.subscribe(f"{self.base}/lockAction", qos=2)
            for topic, value in (("deviceType", "4"), ("name", "Front door"), ("firmware", "4.2.0"), ("mode", "2"),
                                 ("batteryCritical", "false"), ("batteryChargeState", str(self.battery)),
                                 ("doorsensorState", str(self.door)), ("state", str(self.state)), ("connected", "true")):
                await self._retain(topic, value)
            self.connected.set()
            async for message in client.messages:
                text = message.payload.decode() if isinstance(message.payload, bytes) else str(message.payload)
                asyncio.get_running_loop().create_task(self._lock_action(text.strip()))

    async def _retain(self, topic: str, value: str) -> None:
        assert self._client is not None
        await self._client.publish(f"{self.base}/{topic}", value, qos=0, retain=True)

    async def _set_state(self, state: int) -> None:
        self.state = state
        self.states.append(state)
        await self._retain("state", str(state))

    async def _lock_action(self, text: str) -> None:
        assert self._client is not None
        async with self._busy:  # "Nuki devices can only process one command at a time"
            action = int(text) if text.isdigit() else 0
            self.actions.append(action)
            if not 1 <= action <= 6:
                await self._client.publish(f"{self.base}/commandResponse", str(ERROR_UNKNOWN_ACTION), qos=2)
                return
            await self._client.publish(f"{self.base}/lockActionEvent", f"{action},{TRIGGER_MQTT},0,0,0", qos=2)
            await self._client.publish(f"{self.base}/commandResponse", "0", qos=2)
            await self._run(action)

    async def _run(self, action: int) -> None:
        if self.jammed:
            await self._set_state(MOTOR_BLOCKED)
            return
        if action in (2, 6):  # lock, full lock
            await self._move(LOCKING, LOCKED)
        elif action == 1:
            await self._move(UNLOCKING, UNLOCKED)
        elif action == 3:
            await self._move(UNLATCHING, UNLATCHED)
            await asyncio.sleep(self.motor_s)  # the latch springs back; the bolt stays open
            await self._set_state(UNLOCKED)
        elif action in (4, 5):
            await self._move(UNLOCKING, UNLOCKED_LOCK_N_GO)
        if self.state in (UNLOCKED, UNLOCKED_LOCK_N_GO):
            self._arm_auto_lock()

    async def _move(self, through: int, to: int) -> None:
        await self._set_state(through)
        await asyncio.sleep(self.motor_s)
        await self._set_state(to)

    def _arm_auto_lock(self) -> None:
        if self.auto_lock_s is None:
            return
        if self._auto_lock is not None:
            self._auto_lock.cancel()
        self._auto_lock = asyncio.get_running_loop().create_task(self._auto_lock_after(self.auto_lock_s))

    async def _auto_lock_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        while self.door == DOOR_OPENED:  # Auto Lock waits for the door to close when a door sensor is paired
            await asyncio.sleep(0.1)
        assert self._client is not None
        await self._client.publish(f"{self.base}/lockActionEvent", f"2,{TRIGGER_AUTO_LOCK},0,0,0", qos=2)
        await self._move(LOCKING, LOCKED)

    # --- what happens at the door --------------------------------------------------------------

    async def set_door(self, state: int) -> None:
        self.door = state
        await self._retain("doorsensorState", str(state))

    async def keypad_unlatch(self, auth_id: int = 54321, code_id: int = 12345) -> None:
        """A resident types their code on the Nuki Keypad (the API's own example: "3,0,54321,12345,1")."""
        assert self._client is not None
        await self._client.publish(f"{self.base}/lockActionEvent", f"3,{TRIGGER_SYSTEM},{auth_id},{code_id},1", qos=2)
        await self._run(3)
