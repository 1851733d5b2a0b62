"""``door-bridge``: run the bridge, check a config, show the status of a running bridge."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import signal
from pathlib import Path

import typer

from door_firmware_bridge.config import BridgeConfig, ConfigError, load
from door_firmware_bridge.sensors.cli import app as sensors_app
from idsvc.core.cli_group import OperatorGroup

app = typer.Typer(cls=OperatorGroup, no_args_is_help=True, add_completion=False, help="Drive a site's locks and gates safely (docs/bridge.md).")
app.add_typer(sensors_app, name="sensors")


def _print_version(value: bool) -> None:
    if value:
        from idsvc import __version__  # the bridge ships in the idsvc distribution, with its version

        typer.echo(f"door-bridge {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
) -> None:
    """Drive a site's locks and gates safely (docs/bridge.md)."""


CONFIG = typer.Option(Path("/etc/door-bridge/site.toml"), "--config", "-c", help="The site's TOML config.", envvar="DOOR_BRIDGE_CONFIG")


def _load(path: Path) -> BridgeConfig:
    try:
        return load(path)
    except ConfigError as exc:
        typer.echo(f"config error:\n{exc}", err=True)
        raise typer.Exit(2) from None


@app.command("check-config")
def check_config(
    config: Path = CONFIG,
    offline_only: bool = typer.Option(False, "--no-network", help="Check the file only (preparing a config away from the site)."),
) -> None:
    """Validate the config, then ask the service and the broker: is the key good, is every door bound
    to this bridge, is the broker there. Exit 2 naming each bad field, 1 naming each failed check."""
    cfg = _load(config)
    from door_firmware_bridge.offline import root_key

    if cfg.offline.enabled:
        try:
            kid = root_key(cfg.offline.root_public_key).kid.hex()
            fingerprint = hashlib.sha256(base64.b64decode(cfg.offline.root_public_key)).hexdigest()
            cfg.offline.site_key()
        except Exception as exc:
            typer.echo(f"config error:\n{config}: offline: a key does not load ({exc})", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"offline: on, root key kid {kid}, staleness limit {cfg.offline.max_staleness_s} s, feed {cfg.offline.feed.value}")
        # Compare with the sha256 `idsvc pass root-key` prints on the server, out of band (docs/device-api.md).
        typer.echo(f"root key sha256 {fingerprint}")
    else:
        typer.echo("offline: off (every decision needs the service)")
    typer.echo(f"site {cfg.site}: service {cfg.service.url}, broker {cfg.broker.host}:{cfg.broker.port} as {cfg.client_id}")
    for door in cfg.doors:
        extra = f" lane={door.lane.value}" if door.lane.value != "pass_only" else ""
        kind = door.profile.value if door.adapter.value == "mqtt" else f"isapi {door.isapi.mode.value}" if door.isapi else door.adapter.value
        typer.echo(f"  door {door.name} (id {door.door_id}): {door.adapter.value}/{kind}, pulse {door.pulse_s:g} s, {door.wiring.value}{extra}")
    if any(d.camera is not None and d.camera.face_frames for d in cfg.doors):
        from door_firmware_bridge.adapters.camera import face_detector

        try:
            face_detector()
        except ConfigError as exc:
            typer.echo(f"config error:\n{exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo("cameras: face frames on (face model pack found)")
    if not offline_only:
        from door_firmware_bridge.commissioning import check

        problems = asyncio.run(check(cfg))
        for line in problems:
            typer.echo(f"check failed: {line}", err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo("service: key accepted, every door bound to this bridge; broker: reachable")
    typer.echo("config ok")


@app.command()
def run(config: Path = CONFIG, log_level: str = typer.Option("info", help="debug, info, warning")) -> None:
    """Run the bridge until SIGTERM/SIGINT."""
    cfg = _load(config)
    from door_firmware_bridge.faults import CRASH_ENV, POINTS

    if os.environ.get(CRASH_ENV, "") not in ("", *POINTS):
        typer.echo(f"{CRASH_ENV} must be one of {', '.join(POINTS)} (fault injection; unset it to run normally)", err=True)
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt warns on every publish while >10 await their PUBACK
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request (terminal probes every 2 s)
    from door_firmware_bridge.bridge import Bridge

    async def main() -> None:
        bridge = Bridge(cfg)
        task = asyncio.create_task(bridge.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    except ConfigError as exc:  # e.g. a camera that needs a face pack this host does not have
        typer.echo(f"config error:\n{exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def status(config: Path = CONFIG) -> None:
    """What the running bridge last reported (adapters, doors, offline cache age) and the journal backlog."""
    cfg = _load(config)
    from door_firmware_bridge.bridge import STATUS_FILE
    from door_firmware_bridge.journal import Journal

    path = cfg.offline.cache_dir / STATUS_FILE
    report = json.loads(path.read_text()) if path.exists() else {"running": "no status file; is the bridge running?"}
    if cfg.journal.path.exists():
        journal = Journal(cfg.journal.path)
        report["journal"] = journal.counts()  # read now, not from the last report
        journal.close()
    typer.echo(json.dumps(report, indent=2))


@app.command("simulate-lock")
def simulate_lock(door: str, config: Path = CONFIG, scan: str = typer.Option("", help="QR text the lock's reader scans once connected.")) -> None:
    """Run a simulated acs-schema lock for DOOR on the config's broker (demos, wiring checks); Ctrl-C stops it."""
    cfg = _load(config)
    from door_firmware_bridge.simulators.lock import LockSim

    async def main() -> None:
        lock = LockSim(cfg.site, cfg.door(door).name, cfg.broker.host, cfg.broker.port)
        task = asyncio.create_task(lock.run())
        await lock.connected.wait()
        typer.echo(f"lock {door} online at acs/v1/{cfg.site}/{door}")
        if scan:
            await lock.scan(scan)
        seen = 0
        while not task.done():
            for cmd in lock.received[seen:]:
                typer.echo(f"command {cmd.payload.get('cmd_id')}: {lock.results.get(cmd.payload.get('cmd_id', ''), 'ignored')}, lock now {lock.lock}")
            seen = len(lock.received)
            await asyncio.sleep(0.2)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@app.command("simulate-gate")
def simulate_gate(
    door: str,
    config: Path = CONFIG,
    qr: str = typer.Option("", help="QR text shown at the terminal."),
    temperature: float = typer.Option(None, help="Skin temperature the terminal measures, in C."),
    plate: str = typer.Option("", help="Plate the lane's camera reads first."),
    seconds: float = typer.Option(15.0, help="How long the terminal keeps answering (door commands, searches)."),
) -> None:
    """Run a simulated ISAPI terminal at DOOR's isapi.base_url and post one event to the bridge's listener."""
    cfg = _load(config)
    target = cfg.door(door)
    if target.isapi is None:
        typer.echo(f"door {door} is not an isapi door", err=True)
        raise typer.Exit(2)
    from urllib.parse import urlsplit

    from door_firmware_bridge.config import IsapiMode
    from door_firmware_bridge.simulators.gate import GateSim

    async def main() -> None:
        where = urlsplit(target.isapi.base_url)  # type: ignore[union-attr]
        gate = GateSim(bridge_url=f"http://{cfg.listener.host}:{cfg.listener.port}/isapi/{door}", username=target.isapi.username,  # type: ignore[union-attr]
                       remote_check=target.isapi.mode is IsapiMode.remote_check,  # type: ignore[union-attr]
                       password=target.isapi.password, host=where.hostname or "127.0.0.1", port=where.port or 80)  # type: ignore[union-attr]
        await gate.start()
        if plate:
            await gate.plate(plate)
        if qr or temperature is not None:
            await gate.access(qr=qr or None, temperature=temperature)
        await asyncio.sleep(seconds)
        for verdict in gate.verdicts:
            typer.echo(f"remote verification of event {verdict.serial}: {verdict.result} {verdict.info or ''}".rstrip())
        typer.echo(f"door opened {len(gate.opens)} time(s)")
        await gate.stop()

    asyncio.run(main())


def main() -> None:
    app()
