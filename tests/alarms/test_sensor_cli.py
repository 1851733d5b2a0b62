"""`door-bridge sensors ...`: the config check and the Zigbee2MQTT simulator on the real broker."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from pathlib import Path

import aiomqtt
from typer.testing import CliRunner

from door_firmware_bridge.cli import app
from door_firmware_bridge.sensors.ingest import SensorIngest
from door_firmware_bridge.sensors.config import parse
from tests.bridge.conftest import BROKER_PORT

runner = CliRunner()
CONFIG = """
site = "village-1"
[service]
url = "http://127.0.0.1:8080"
device_key = "k"
[[sensors]]
code = "smoke-101"
family = "zigbee2mqtt"
[[sensors]]
code = "efm-b1"
family = "tasmota"
readings = { residual_current_ma = ["ANALOG.A1"] }
"""


def test_check_config_names_the_bad_field(tmp_path: Path) -> None:
    good = tmp_path / "sensors.toml"
    good.write_text(CONFIG)
    result = runner.invoke(app, ["sensors", "check-config", "-c", str(good)])
    assert result.exit_code == 0 and "sensor efm-b1: tasmota on efm-b1" in result.output and "config ok" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.replace("residual_current_ma", "residual_current"))
    result = runner.invoke(app, ["sensors", "check-config", "-c", str(bad)])
    assert result.exit_code == 2 and "sensors[1]" in result.output and "unknown keys ['residual_current']" in result.output


def test_simulate_zigbee_publishes_what_the_ingest_reads(tmp_path: Path) -> None:
    base = f"t{secrets.token_hex(4)}/zigbee2mqtt"
    received: list[tuple[str, bytes]] = []
    subscribed = threading.Event()

    async def listen() -> None:
        async with aiomqtt.Client("127.0.0.1", BROKER_PORT) as client:
            await client.subscribe(f"{base}/#", qos=1)
            subscribed.set()
            async for message in client.messages:
                received.append((str(message.topic), bytes(message.payload)))  # type: ignore[arg-type]
                if len(received) == 3:
                    return

    thread = threading.Thread(target=lambda: asyncio.run(asyncio.wait_for(listen(), 15)))
    thread.start()
    assert subscribed.wait(10)
    result = runner.invoke(app, ["sensors", "simulate-zigbee", "smoke-101", "--port", str(BROKER_PORT), "--base", base, "--smoke", "--repeat", "2", "--every", "0", "--legacy"])
    assert result.exit_code == 0, result.output
    thread.join(15)
    topics = [t for t, _ in received]
    assert topics == [f"{base}/smoke-101/availability", f"{base}/smoke-101", f"{base}/smoke-101"]
    assert received[0][1] == b"online" and json.loads(received[1][1])["battery"] == "97"  # legacy: numbers as strings
    cfg = parse({"site": "v", "service": {"url": "http://x", "device_key": "k"}, "journal": {"path": str(tmp_path / "j.db")}, "zigbee2mqtt_base": base,
                 "sensors": [{"code": "smoke-101", "family": "zigbee2mqtt"}]})
    ingest = SensorIngest(cfg)
    try:
        assert ingest.reading(*received[0]) == {"sensor": "smoke-101", "online": True, "values": {}}
        reading = ingest.reading(*received[1])
        assert reading is not None and reading["values"] == {"smoke": True, "tamper": False, "battery_low": False, "battery": 97.0, "linkquality": 120.0}
        assert ingest.reading(f"{base}/smoke-101", b"not json") is None and ingest.ignored == 1
        assert ingest.reading(f"{base}/smoke-101", b'{"smoke": null, "battery": "n/a"}') is None  # nothing said: no reading
    finally:
        ingest.journal.close()
