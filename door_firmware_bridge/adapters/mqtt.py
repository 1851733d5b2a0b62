"""MQTT locks and relays: one broker connection for the site, a device profile per door
(adapters/profiles: the acs schema of docs/bridge.md, Nuki, Tasmota, Zigbee2MQTT).

Commands go out never retained, with the profile's QoS and an MQTT v5 message expiry equal to the
time left before ``expires_at``. A fresh client is made for every connection and commands are only
handed to a connected one, so nothing published into a dead connection can leave later (paho queues
while offline). The bridge's availability is retained with a last will of ``offline``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from door_firmware_bridge.adapters.base import Sink
from door_firmware_bridge.adapters.profiles import DeviceProfile, Publish, profile_for
from door_firmware_bridge.adapters.profiles.acs import base_topic
from door_firmware_bridge.config import BrokerConfig, DoorConfig, Profile
from door_firmware_bridge.model import Command
from door_firmware_bridge.supervisor import DeviceUnavailable

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 2.0


def bridge_availability_topic(site: str) -> str:
    return f"acs/v1/{site}/bridge/availability"


class MqttAdapter:
    def __init__(self, site: str, broker: BrokerConfig, client_id: str, doors: list[DoorConfig]) -> None:
        self.site = site
        self.broker = broker
        self.client_id = client_id
        self.doors = doors
        self.profiles: dict[str, DeviceProfile] = {d.name: profile_for(site, d) for d in doors}
        self._routes: dict[str, DeviceProfile] = {topic: p for p in self.profiles.values() for topic in p.topics()}
        self._client: aiomqtt.Client | None = None
        self.connects = 0

    def health(self) -> dict[str, Any]:
        return {"broker": f"{self.broker.host}:{self.broker.port}", "connected": self._client is not None, "connects": self.connects,
                "not_ready": {name: why for name, p in self.profiles.items() if (why := p.not_ready())}}

    def relocks_itself(self, door: DoorConfig) -> bool:
        return self.profiles[door.name].relocks_itself

    async def run(self, sink: Sink) -> None:
        backoff = 0.2
        while True:
            will = aiomqtt.Will(bridge_availability_topic(self.site), "offline", qos=1, retain=True)
            client = aiomqtt.Client(
                self.broker.host, self.broker.port, identifier=self.client_id, username=self.broker.username, password=self.broker.password,
                protocol=aiomqtt.ProtocolVersion.V5, will=will, keepalive=self.broker.keepalive_s, timeout=5,
                clean_start=True,
            )
            try:
                async with client:
                    await client.subscribe([(topic, 1) for topic in self._routes])
                    await client.publish(bridge_availability_topic(self.site), "online", qos=1, retain=True)
                    self._client, backoff = client, 0.2
                    self.connects += 1
                    log.info("connected to the broker at %s:%s", self.broker.host, self.broker.port)
                    for profile in self.profiles.values():
                        for query in profile.on_connect():
                            await self._publish(client, query)
                    async for message in client.messages:
                        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                        await self._dispatch(client, str(message.topic), payload, sink)
            except aiomqtt.MqttError as exc:
                log.warning("broker connection lost: %s; reconnecting in %.1f s", exc, backoff)
            finally:
                self._client = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _dispatch(self, client: aiomqtt.Client, topic: str, payload: bytes, sink: Sink) -> None:
        profile = self._routes.get(topic)
        if profile is None:
            return
        for item in profile.parse(topic, payload):
            if isinstance(item, Publish):
                await self._publish(client, item)
            else:
                await sink(item)

    async def _publish(self, client: aiomqtt.Client, message: Publish, expiry_s: int | None = None) -> None:
        properties = None
        if expiry_s is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.MessageExpiryInterval = expiry_s
        await client.publish(message.topic, message.payload, qos=message.qos, retain=False, properties=properties, timeout=PUBLISH_TIMEOUT_S)

    async def send(self, door: DoorConfig, cmd: Command) -> None:
        client = self._client
        if client is None:
            raise DeviceUnavailable("broker_disconnected")
        profile = self.profiles[door.name]
        if (why := profile.not_ready()) is not None:
            raise DeviceUnavailable(why)
        try:
            await self._publish(client, profile.command(cmd), expiry_s=cmd.ttl_s)
        except aiomqtt.MqttError as exc:
            raise DeviceUnavailable("broker_publish_failed") from exc

    async def publish_event(self, door: DoorConfig, kind: str, data: dict[str, Any]) -> None:
        """Tell the door (and dashboards) what was decided: {b}/event, QoS 0, never retained, best effort."""
        client = self._client
        if client is None or door.profile is not Profile.acs:
            return
        body = {"v": 1, "type": kind, "at": datetime.now().astimezone().isoformat(), **data}
        try:
            await client.publish(f"{base_topic(self.site, door.name)}/event", json.dumps(body, default=str), qos=0, retain=False, timeout=PUBLISH_TIMEOUT_S)
        except aiomqtt.MqttError:
            log.debug("could not publish the %s event for %s", kind, door.name)

