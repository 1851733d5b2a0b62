"""``idsvc alarm list|ack|clear`` and ``idsvc sensor add|list``: the operator acts as a district admin.

Notices of an acknowledgement or a clear made here reach running service nodes through Redis
(without Redis, their live streams see the change at the next list, not as a notice).
"""

from __future__ import annotations

import typer

from idsvc.alarms import sensors, service
from idsvc.alarms.models import SensorFamily, SensorKind, Severity
from idsvc.auth.principal import OPERATOR
from idsvc.core.cli import ROW_ID, cli_context, fail, print_json


def register(app: typer.Typer) -> None:
    alarm = typer.Typer(no_args_is_help=True, help="Alarms: list, acknowledge, clear (docs/alarms.md).")
    sensor = typer.Typer(no_args_is_help=True, help="Safety sensors and HJ 212 stations (docs/sensors.md).")
    app.add_typer(alarm, name="alarm")
    app.add_typer(sensor, name="sensor")

    @alarm.command("list")
    def alarm_list(
        site_id: int = typer.Option(None, "--site", **ROW_ID),
        state: str = typer.Option("active", help="active, cleared or all"),
        severity: list[Severity] = typer.Option([], help="Only these severities (repeat)."),
        limit: int = typer.Option(100, min=1, max=1000),
    ) -> None:
        """Newest first."""
        if state not in ("active", "cleared", "all"):
            fail("--state must be active, cleared or all")
        with cli_context() as ctx, ctx.db.session() as s:
            rows = service.query(s, OPERATOR, service.AlarmFilter(state=state, site_id=site_id, severities=severity), limit)
            print_json([service.view(a, OPERATOR) for a in rows])

    @alarm.command("ack")
    def alarm_ack(alarm_id: int = typer.Argument(..., **ROW_ID), note: str = typer.Option(None, help="What is being done about it.")) -> None:
        """Acknowledge an alarm (someone is on it)."""
        with cli_context() as ctx, ctx.db.session() as s:
            print_json(service.view(service.acknowledge(s, ctx.bus, OPERATOR, alarm_id, note), OPERATOR))

    @alarm.command("clear")
    def alarm_clear(alarm_id: int = typer.Argument(..., **ROW_ID), reason: str = typer.Option(..., help="Why it is over; recorded in the audit trail.")) -> None:
        """Clear an alarm after checking on site."""
        with cli_context() as ctx, ctx.db.session() as s:
            print_json(service.view(service.clear(s, ctx.bus, OPERATOR, alarm_id, reason), OPERATOR))

    @sensor.command("add")
    def sensor_add(
        code: str = typer.Argument(..., help="Zigbee2MQTT friendly name, Tasmota topic, or the station's MN."),
        site_id: int = typer.Option(..., "--site", **ROW_ID),
        building_id: int = typer.Option(..., "--building", **ROW_ID),
        family: SensorFamily = typer.Option(...),
        kind: SensorKind = typer.Option(...),
        name: str = typer.Option(None, help="Shown to people; default the code."),
        unit_id: int = typer.Option(None, "--unit", **ROW_ID),
        device_id: int = typer.Option(None, "--device", **ROW_ID, help="The sensor ingest device that reports for it (not for hj212)."),
        silence_s: int = typer.Option(None, "--silence", min=10, max=7 * 86400, help="Offline after this many silent seconds."),
        password: str = typer.Option(None, "--password", envvar="IDSVC_STATION_PASSWORD", help="hj212: the station's PW (or the env variable)."),
        crc: str = typer.Option("strict", help="hj212: strict, modbus_too or off."),
    ) -> None:
        """Register a sensor or an HJ 212 station in a building (and unit)."""
        if crc not in ("strict", "modbus_too", "off"):
            fail("--crc must be strict, modbus_too or off")
        new = sensors.NewSensor(site_id=site_id, building_id=building_id, code=code, name=name or code, family=family, kind=kind, unit_id=unit_id,
                                device_id=device_id, silence_s=silence_s, password=password, settings={"crc": crc} if family is SensorFamily.hj212 else {})
        with cli_context() as ctx, ctx.db.session() as s:
            print_json(sensors.to_dict(sensors.create(s, ctx.sealer, OPERATOR, new)))

    @sensor.command("list")
    def sensor_list(site_id: int = typer.Option(None, "--site", **ROW_ID)) -> None:
        """List sensors and stations (of one site with --site), with their online state."""
        with cli_context() as ctx, ctx.db.session() as s:
            print_json([sensors.to_dict(x) for x in sensors.listed(s, OPERATOR, site_id)])
