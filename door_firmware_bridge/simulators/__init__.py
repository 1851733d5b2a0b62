"""Simulated devices for tests and the demo: an MQTT lock and an ISAPI-style gate terminal."""
