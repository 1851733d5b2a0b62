"""``door-bridge sensors ...``: run the sensor ingest, check its config, and simulated sensors/stations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from collections.abc import Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from door_firmware_bridge.config import ConfigError
from door_firmware_bridge.sensors.config import SensorIngestConfig, load

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Safety sensors (Zigbee2MQTT, Tasmota) and HJ 212 station simulation (docs/sensors.md).")
CONFIG = typer.Option(Path("/etc/door-bridge/sensors.toml"), "--config", "-c", help="The sensor ingest's TOML config.", envvar="SENSOR_INGEST_CONFIG")


def _load(path: Path) -> SensorIngestConfig:
    try:
        return load(path)
    except ConfigError as exc:
        typer.echo(f"config error:\n{exc}", err=True)
        raise typer.Exit(2) from None


@app.command("check-config")
def check_config(config: Path = CONFIG) -> None:
    """Validate the config and list the topics the ingest will subscribe to; exit 2 naming each bad field."""
    cfg = _load(config)
    typer.echo(f"site {cfg.site}: service {cfg.service.url}, broker {cfg.broker.host}:{cfg.broker.port} as {cfg.client_id}")
    for sensor in cfg.sensors:
        typer.echo(f"  sensor {sensor.code}: {sensor.family.value} on {sensor.device_topic}" + (f", readings {dict(sensor.readings)}" if sensor.readings else ""))
    typer.echo("config ok")


@app.command()
def run(config: Path = CONFIG, log_level: str = typer.Option("info", help="debug, info, warning")) -> None:
    """Run the sensor ingest until SIGTERM/SIGINT."""
    cfg = _load(config)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from door_firmware_bridge.sensors.ingest import SensorIngest

    async def main() -> None:
        task = asyncio.create_task(SensorIngest(cfg).run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


@app.command("simulate-zigbee")
def simulate_zigbee(
    name: str = typer.Argument(..., help="The device's Zigbee2MQTT friendly name."),
    host: str = typer.Option("127.0.0.1", help="Broker host."),
    port: int = typer.Option(1883, min=1, max=65535, help="Broker port."),
    base: str = typer.Option("zigbee2mqtt", help="Zigbee2MQTT base_topic."),
    smoke: bool = typer.Option(None, "--smoke/--no-smoke", help="Report smoke (or its end)."),
    gas: bool = typer.Option(None, "--gas/--no-gas", help="Report gas (or its end)."),
    water_leak: bool = typer.Option(None, "--water-leak/--no-water-leak"),
    gas_value: float = typer.Option(None, help="Report a measured gas concentration."),
    offline: bool = typer.Option(False, help="Publish availability offline instead."),
    repeat: int = typer.Option(1, min=1, max=100_000, help="Publish the state this many times."),
    every: float = typer.Option(1.0, min=0.0, max=3600.0, help="Seconds between repeats."),
    legacy: bool = typer.Option(False, help="Old Zigbee2MQTT: numbers as strings, plain-word availability."),
) -> None:
    """Publish a simulated Zigbee2MQTT sensor's availability and state (watch alarms appear in the service)."""
    from door_firmware_bridge.sensors.simulators import ZigbeeSensorSim

    _finite(every=every, gas_value=gas_value)
    changes = {k: v for k, v in {"smoke": smoke, "gas": gas, "water_leak": water_leak, "gas_value": gas_value}.items() if v is not None}

    async def main() -> None:
        async with ZigbeeSensorSim(name, base, host, port, legacy=legacy) as sim:
            await sim.availability(not offline)
            if offline:
                typer.echo(f"{sim.topic}/availability: offline")
                return
            for n in range(repeat):
                typer.echo(f"{sim.topic}: {await sim.report(**changes)}")
                if n + 1 < repeat:
                    await asyncio.sleep(every)

    _run_against(main(), f"the broker at {host}:{port} (check --host and --port)")


@app.command("simulate-hj212")
def simulate_hj212(
    mn: str = typer.Option(..., help="The station's MN (registered in the service as an hj212 sensor)."),
    password: str = typer.Option(..., "--pw", help="The station's access password."),
    host: str = typer.Option("127.0.0.1", help="The service's HJ 212 server (IDSVC_HJ212_HOST)."),
    port: int = typer.Option(2120, min=1, max=65535, help="The service's HJ 212 port (IDSVC_HJ212_PORT)."),
    cn: str = typer.Option("2061", help="2011 real-time, 2051 minute, 2061 hour, 2031 day."),
    so2: float = typer.Option(0.12, help="SO2 (a21026) value, mg/m3."),
    flag: str = typer.Option("N", help="Data flag of every value (N, F, M, S, D, C, T, B)."),
) -> None:
    """Send one data message as a station would (Flag=5: answer wanted) and print the platform's answer."""
    from door_firmware_bridge.sensors.hj212_station import StationSim, data_cp, frame

    _finite(so2=so2)
    for option, value in (("--mn", mn), ("--pw", password), ("--cn", cn), ("--flag", flag)):
        if not value or not value.isascii() or not value.isprintable():
            typer.echo(f"error: {option} must be printable ASCII, as HJ 212 frames are (got {value!r})", err=True)
            raise typer.Exit(2)

    async def main() -> None:
        now = datetime.now().replace(microsecond=0)  # a station's clock: local time
        data_time = now.replace(minute=0, second=0) - timedelta(hours=1) if cn == "2061" else now
        key = "Rtd" if cn == "2011" else "Avg"
        values = {"a21026": {key: so2, "Flag": flag}, "a21002": {key: 0.04, "Flag": flag}, "a21005": {key: 0.8, "Flag": flag}}
        async with StationSim(mn, password, host, port) as station:
            raw = frame(station.segment(cn, data_cp(data_time, values), at=now))
            typer.echo(f"sent:   {raw.decode().strip()}")
            answer = await station.send(raw)
            typer.echo(f"answer: {answer.decode().strip() if answer else '(none)'}")

    _run_against(main(), f"{host}:{port}; is the service running with IDSVC_HJ212_PORT={port}? (check --host and --port)")


def _finite(**numbers: float | None) -> None:
    for name, value in numbers.items():
        if value is not None and not math.isfinite(value):
            typer.echo(f"error: --{name.replace('_', '-')} must be a finite number, not {value}", err=True)
            raise typer.Exit(2)


def _run_against(work: Coroutine[Any, Any, None], peer: str) -> None:
    """Run a simulator; a peer that cannot be reached or named is one line, not a traceback."""
    import aiomqtt

    try:
        asyncio.run(work)
    except (OSError, TimeoutError, UnicodeError, ValueError, aiomqtt.MqttError) as exc:
        typer.echo(f"error: no answer from {peer}: {exc}", err=True)
        raise typer.Exit(1) from None
