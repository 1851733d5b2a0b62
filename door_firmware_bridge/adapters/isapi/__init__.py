"""Hikvision access-control terminals and ANPR cameras through ISAPI (docs/bridge.md, "Park gates")."""

from door_firmware_bridge.adapters.isapi.adapter import IsapiAdapter, QuietServer

__all__ = ["IsapiAdapter", "QuietServer"]
