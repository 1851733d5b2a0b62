"""Which audit events a caller may read: the one rule the API and the console both apply."""

from __future__ import annotations

from sqlalchemy.orm import Session

from idsvc.audit.service import AuditFilter
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
