"""Every alarm type the core raises: its severity and what it means. docs/alarms.md's table is
checked against this (tests/alarms/test_docs_tables.py), so integrators read the same list.

Door and device types come from the events bridges upload (``"alarm": true``); an alarm event of a
kind not listed here still becomes an alarm, of severity ``minor``, so a newer bridge is never
silenced by an older service.
"""

from __future__ import annotations

from dataclasses import dataclass

from idsvc.alarms.models import Severity


@dataclass(frozen=True)
class AlarmType:
    name: str
    severity: Severity
    meaning: str


_TYPES = [
    # Sensors (Zigbee2MQTT booleans, numeric thresholds, availability).
    AlarmType("smoke", Severity.critical, "a smoke detector reports smoke"),
    AlarmType("gas", Severity.critical, "a gas detector reports combustible gas"),
    AlarmType("carbon_monoxide", Severity.critical, "a detector reports carbon monoxide"),
    AlarmType("gas_concentration_high", Severity.critical, "measured gas concentration above the site limit for the hold time"),
    AlarmType("water_leak", Severity.major, "a leak sensor is wet"),
    AlarmType("residual_current_high", Severity.major, "an electrical-fire monitor measures residual current above the site limit"),
    AlarmType("line_temperature_high", Severity.major, "an electrical-fire monitor measures a line temperature above the site limit"),
    AlarmType("sensor_tamper", Severity.major, "a sensor's case was opened or it was removed"),
    AlarmType("sensor_battery_low", Severity.warning, "a sensor's battery is low"),
    AlarmType("sensor_offline", Severity.major, "a sensor or station went offline (last will, availability) or silent"),
    AlarmType("sensor_gateway_offline", Severity.major, "a sensor ingest has not been heard for its silence limit (its sensors' silence is not judged meanwhile)"),
    # HJ 212 emission stations.
    AlarmType("emission_exceedance", Severity.major, "an hour or day mean above the station's limit (GB 3095-2012 Grade II unless set)"),
    AlarmType("station_fault", Severity.minor, "a station flags a value D (fault), B (communication error) or T (over range)"),
    # Doors and devices, from the bridges' uploaded events.
    AlarmType("door_forced", Severity.critical, "a door opened without an authorised unlock"),
    AlarmType("relock_overdue", Severity.critical, "a lock still reports unlocked after its pulse and grace"),
    AlarmType("door_held_open", Severity.minor, "a door stayed open longer than held_open_s"),
    AlarmType("fever_detected", Severity.major, "a gate measured a skin temperature at or above the limit (re-check with a clinical thermometer)"),
    AlarmType("temperature_invalid", Severity.warning, "a temperature reading was implausible, missing or not this person's"),
    AlarmType("device_offline", Severity.major, "a lock or terminal went offline"),
    AlarmType("tamper", Severity.major, "a lock or terminal reports tampering"),
    AlarmType("lock_jammed", Severity.major, "a lock reports a jammed motor"),
    AlarmType("battery_low", Severity.warning, "a lock's battery is low"),
    AlarmType("door_contact_fault", Severity.minor, "a door contact reports a fault"),
    AlarmType("command_timeout", Severity.minor, "a lock did not confirm a command in time (state unknown)"),
    AlarmType("command_late_result", Severity.minor, "a lock confirmed a command after its deadline"),
    AlarmType("cache_stale", Severity.major, "a bridge's offline copy is older than its limit: offline QR passes are refused"),
    AlarmType("feed_refused", Severity.major, "a bridge refused a sync feed document (signature, version gap)"),
    AlarmType("device_message_refused", Severity.minor, "a bridge refused a device message from an address not allowed"),
    AlarmType("command_outcome_unknown", Severity.major, "the bridge restarted before a lock confirmed an unlock; the door's state is read again"),
    AlarmType("relock_failed", Severity.critical, "the bridge could not lock a lock that does not relock itself (Nuki, Zigbee) after a pulse"),
    AlarmType("door_open_at_start", Severity.minor, "a door was open when the bridge started (not known whether forced)"),
    AlarmType("device_clock_skew", Severity.major, "a terminal's clock is off by more than the site's bound: its presentations are refused"),
    AlarmType("device_misconfigured", Severity.major, "a device's setting does not match the door (Tasmota PulseTime): the door is not driven"),
    AlarmType("device_alarm", Severity.major, "a terminal raised an alarm of its own (Dahua BreakIn, DoorNotClosed, Duress)"),
    AlarmType("terminal_people_sync_failed", Severity.major, "a terminal's person list could not be brought in step with the grants"),
    AlarmType("device_records_unreadable", Severity.major, "a terminal's record search answered something unreadable: decisions it made while the bridge could not hear it are not fetched until a search succeeds"),
    # The service itself.
    AlarmType(
        "face_template_unreadable", Severity.major,
        "a person's face template could not be opened (a master key missing from IDSVC_MASTER_KEY, or an edited row): face search skips them until re-enrolled",
    ),
]

TYPES: dict[str, AlarmType] = {t.name: t for t in _TYPES}
UNLISTED_SEVERITY = Severity.minor


def severity_of(alarm_type: str) -> Severity:
    known = TYPES.get(alarm_type)
    return known.severity if known else UNLISTED_SEVERITY


# Events that end a condition: the alarm it raised is cleared (automatically, "by the source").
# Alarms that need a person's look (forced door, fever, tamper) are cleared by people only.
CLEARED_BY_EVENT: dict[str, tuple[str, ...]] = {
    "device_online": ("device_offline",),
    "door_closed": ("door_held_open",),
    "cache_fresh": ("cache_stale",),
    "door_relocked": ("relock_overdue", "relock_failed"),
    "device_clock_ok": ("device_clock_skew",),
}
