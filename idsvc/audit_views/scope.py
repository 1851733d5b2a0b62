"""Which audit events a caller may read, and what of each: the rules the API, the CLI and the console all apply."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from idsvc.audit.models import AuditEvent
from idsvc.audit.service import AuditFilter, event_to_dict
from idsvc.auth import health_data
from idsvc.auth.models import Role
from idsvc.auth.principal import Principal
from idsvc.core.errors import InvalidInput
from idsvc.registry.scope import owned_unit_ids


def narrowed(session: Session, caller: Principal, flt: AuditFilter) -> AuditFilter:
    """Narrow a query to what the caller may see: admins their sites, owners their units, tenants themself."""
    if flt.since and flt.until and flt.until <= flt.since:
        raise InvalidInput("'until' must be after 'since'.", code="invalid_time_range")
    if caller.is_district_admin:
        return flt
    if caller.role is Role.site_admin:
        flt.site_ids = [caller.site_id or -1]
    elif caller.role is Role.owner:
        flt.unit_ids = owned_unit_ids(session, caller)
    elif caller.role is Role.tenant:
        flt.person_id = caller.person_id
    else:
        caller.require_role(Role.district_admin, Role.site_admin, Role.owner, Role.tenant)
    return flt


def shown(caller: Principal, flt: AuditFilter, events: Iterable[AuditEvent]) -> Iterator[dict[str, Any]]:
    """The events (found with ``flt``) as the caller may read them: health data only for those who may
    see it (auth/health_data.py). A search by person leaves out the health findings the caller may not
    tie to a person: else the filter would tell who had the fever that the answer hides."""
    ties_person = flt.person_id is not None and not health_data.sees_health_data(caller)
    for event in events:
        if ties_person and health_data.is_health_finding(event.kind, event.data or {}):
            continue
        yield health_data.shown(caller, event_to_dict(event), kind_field="kind")
