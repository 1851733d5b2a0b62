"""Alarms: one core for door, device, sensor and emission alarms, with a lifecycle people act on.

An alarm is identified by its source (``door:3``, ``device:7``, ``sensor:12``, ``sensor:12/a21026``)
and its type; the database keeps at most one active alarm per (source, type), so a repeat (on any
node) updates the count of the active one. Sensors (Zigbee2MQTT, Tasmota, electrical-fire monitors)
report through a site's sensor ingest; HJ 212-2017 emission stations talk to the TCP server in
``alarms.hj212``. See docs/alarms.md and docs/sensors.md.
"""
