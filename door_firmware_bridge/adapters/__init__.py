"""Device adapters: each turns one family of devices into DeviceEvents and pulse commands (base.Adapter)."""
