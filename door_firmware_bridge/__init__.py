"""door_firmware_bridge: drives a site's locks and gates safely, online and offline (docs/bridge.md)."""
