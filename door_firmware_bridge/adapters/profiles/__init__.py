"""MQTT device families: each profile turns the bridge's commands into the device's own messages and
the device's messages into bridge events, following the vendor's published protocol (docs/bridge.md,
"Vendor protocols", cites the source of each behaviour)."""

from __future__ import annotations

from door_firmware_bridge.adapters.profiles.acs import AcsProfile
from door_firmware_bridge.adapters.profiles.base import DeviceProfile, Publish
from door_firmware_bridge.adapters.profiles.nuki import NukiProfile
from door_firmware_bridge.adapters.profiles.tasmota import TasmotaProfile
from door_firmware_bridge.adapters.profiles.zigbee import ZigbeeLockProfile
from door_firmware_bridge.config import DoorConfig, Profile

__all__ = ["DeviceProfile", "Publish", "profile_for"]


def profile_for(site: str, door: DoorConfig) -> DeviceProfile:
    if door.profile is Profile.nuki:
        return NukiProfile(door)
    if door.profile is Profile.tasmota:
        return TasmotaProfile(door)
    if door.profile is Profile.zigbee2mqtt:
        return ZigbeeLockProfile(door)
    return AcsProfile(site, door)
