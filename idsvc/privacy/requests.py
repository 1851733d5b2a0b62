"""A person's request to see or erase what is held about them, as an admin records it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from idsvc.auth.principal import Principal
from idsvc.core.errors import Forbidden
from idsvc.core.validation import Name
from idsvc.registry.models import Person
from idsvc.registry.scope import can_see_person, load, not_visible


class ErasureOrExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requester: Name = Field(..., description="Who asked (the person, or who acts for them), as the admin recorded it; audited.")
    purpose: Name = Field(..., description='Why, e.g. "PIPL art. 45 access request" or "moved out, asked to be forgotten"; audited.')


def person_for_request(session: Session, principal: Principal, person_id: int) -> Person:
    """The person, if the caller administers their site; 404 for anyone who may not see them."""
    person = load(session, Person, person_id, "person")
    if person.erased_at is not None or not can_see_person(session, principal, person):
        raise not_visible("person", person_id)
    if not principal.administers_site(person.site_id):
        raise Forbidden("Exports and erasures are made by the site's admins, on the person's request.", code="forbidden_role")
    return person
