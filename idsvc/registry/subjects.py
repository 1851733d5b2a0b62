"""The registry's answer to auth's ``SubjectDirectory``: the people, devices and sites keys are bound to."""

from __future__ import annotations

from sqlalchemy.orm import Session

from idsvc.auth.subjects import Subject
from idsvc.registry.models import Device, Person, Site, Status


class RegistrySubjects:
    def site_exists(self, session: Session, site_id: int) -> bool:
        return session.get(Site, site_id) is not None

    def person(self, session: Session, person_id: int) -> Subject | None:
        person = session.get(Person, person_id)
        if person is None:
            return None
        return Subject(site_id=person.site_id, active=person.status is Status.active, revoked=person.status is Status.revoked)

    def device(self, session: Session, device_id: int) -> Subject | None:
        device = session.get(Device, device_id)
        if device is None:
            return None
        return Subject(
            site_id=device.site_id,
            active=device.status is Status.active,
            revoked=device.status is Status.revoked,
            door_ids=frozenset(door.id for door in device.doors),
        )
