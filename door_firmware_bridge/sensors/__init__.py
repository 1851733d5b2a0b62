"""The sensor ingest: a small process beside the door bridge that takes safety sensors' MQTT
messages (Zigbee2MQTT, Tasmota), normalises them, journals them and uploads them to the service's
``POST /v1/device/sensor-readings``. The service turns readings into alarms (docs/sensors.md)."""
