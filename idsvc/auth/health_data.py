"""Health data by role: what of an alarm or an audit event (door decisions and device events
included) a reader sees. Every view (API, CLI, console pages and exports, live streams) passes its
records through :func:`shown`, so the rule is written once, here; docs/privacy.md states it.

Body temperature is health data, sensitive personal information under PIPL art. 28. Site staff
(district and site admins) act on fever alarms, so they see the reading and who it was; a tenant
reads only events about themself, their own readings included (PIPL art. 45). Everyone else, an
owner (landlord) above all, sees that a fever alarm or temperature refusal happened at their unit's
door (type, time, door, state) but neither the reading nor who it was: a landlord must not learn a
tenant's health.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idsvc.auth.models import Role
from idsvc.auth.principal import Principal

# Alarm types (and device event kinds) that are a health finding about someone (alarms/catalogue.py).
HEALTH_TYPES = frozenset({"fever_detected", "temperature_invalid"})
# Data keys holding a body temperature reading (the bridge's verdict: celsius, reasons, advice).
HEALTH_DATA_KEYS = frozenset({"temperature"})
# Reason codes that judge a temperature (docs/bridge.md: temperature_high, temperature_low, ...).
HEALTH_REASON_PREFIX = "temperature_"
# What a finding's data keeps for readers without health data: what happened, not who or what was measured.
FINDING_DATA_SHOWN = frozenset({"event_id", "type", "severity", "source", "count", "advice"})
# Fields of a finding that name the person or hold free text about them (typed by staff when clearing).
FINDING_FIELDS_WITHHELD = ("person_id", "subject", "clear_reason")
# Data key listing the keys that were left out, so a client can tell "withheld" from "never sent".
WITHHELD = "withheld"

_SEES_HEALTH_DATA = frozenset({Role.district_admin, Role.site_admin, Role.tenant})


def sees_health_data(reader: Principal) -> bool:
    return reader.role in _SEES_HEALTH_DATA


def is_health_finding(kind: str, data: Mapping[str, Any]) -> bool:
    """Does the record say something about someone's health (a fever, a temperature refusal)?"""
    if kind.removeprefix("device.") in HEALTH_TYPES or data.get("type") in HEALTH_TYPES:
        return True
    reading = data.get("temperature")
    reasons = [*(data.get("reasons") or []), *((reading.get("reasons") or []) if isinstance(reading, Mapping) else [])]
    return any(isinstance(r, str) and r.startswith(HEALTH_REASON_PREFIX) for r in reasons)


def shown(reader: Principal, record: Mapping[str, Any], *, kind_field: str) -> dict[str, Any]:
    """``record`` (an alarm's or audit event's dict, with ``data``) as ``reader`` may see it.

    A health finding keeps its type, time, door and state, and of its data only
    :data:`FINDING_DATA_SHOWN`; the person and staff's free text about it are null. Any other record
    loses only its temperature reading (without a finding, who it was says nothing about health).
    """
    out = dict(record)
    data: Mapping[str, Any] = record.get("data") or {}
    if sees_health_data(reader):
        return out
    if is_health_finding(str(record.get(kind_field) or ""), data):
        out["data"] = {k: v for k, v in data.items() if k in FINDING_DATA_SHOWN} | {WITHHELD: sorted(set(data) - FINDING_DATA_SHOWN)}
        out |= {f: None for f in FINDING_FIELDS_WITHHELD if f in out}
    elif any(data.get(k) is not None for k in HEALTH_DATA_KEYS):
        out["data"] = {k: v for k, v in data.items() if k not in HEALTH_DATA_KEYS} | {WITHHELD: sorted(HEALTH_DATA_KEYS & set(data))}
    return out
