"""The authenticated caller and the scope rules every service checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from idsvc.auth.models import Role
from idsvc.core.errors import Forbidden


@dataclass(frozen=True)
class Principal:
    role: Role
    key_id: int | None = None
    site_id: int | None = None
    person_id: int | None = None
    device_id: int | None = None
    door_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        if self.role is Role.device:
            return f"device:{self.device_id}"
        if self.person_id is not None:
            return f"person:{self.person_id}"
        if self.key_id is not None:
            return f"key:{self.key_id}"
        return "operator"

    @property
    def is_district_admin(self) -> bool:
        return self.role is Role.district_admin

    def administers_site(self, site_id: int) -> bool:
        return self.role is Role.district_admin or (self.role is Role.site_admin and self.site_id == site_id)

    def require_site_admin(self, site_id: int) -> None:
        if not self.administers_site(site_id):
            raise Forbidden("This needs the site admin role for this site.", code="forbidden_scope")

    def require_district_admin(self) -> None:
        if self.role is not Role.district_admin:
            raise Forbidden("This needs the district admin role.", code="forbidden_role")

    def require_door(self, door_id: int) -> None:
        """A device asks only about its own doors. A door id that does not exist gets the same answer
        as another device's door, without a database read, so a lock key cannot probe which door ids
        exist in the deployment (docs/device-api.md)."""
        if door_id not in self.door_ids:
            raise Forbidden(f"Door {door_id} is not one of this device's doors.", code="door_not_assigned")

    def require_role(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"This needs one of the roles: {allowed}.", code="forbidden_role")


# Used by the operator CLI: it runs on the server with direct database access.
OPERATOR = Principal(role=Role.district_admin)
