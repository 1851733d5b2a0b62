"""What API keys need to know about the people, devices and sites they are bound to.

Keys live in auth and their subjects in the registry, which sits above auth (it checks scopes with
auth's principals). So auth states here the little it reads, and the registry provides it
(``idsvc.registry.subjects``); the app wiring (``idsvc/context.py``) installs that provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Subject:
    """A person or device as a key binding sees it."""

    site_id: int
    active: bool  # neither suspended nor revoked
    revoked: bool
    door_ids: frozenset[int] = frozenset()  # a device's doors; empty for a person


class SubjectDirectory(Protocol):
    def site_exists(self, session: Session, site_id: int) -> bool: ...

    def person(self, session: Session, person_id: int) -> Subject | None: ...

    def device(self, session: Session, device_id: int) -> Subject | None: ...


_installed: SubjectDirectory | None = None


def install(directory: SubjectDirectory) -> None:
    global _installed
    _installed = directory


def directory() -> SubjectDirectory:
    if _installed is None:  # a wiring mistake, never a request: refuse rather than guess
        raise RuntimeError("auth has no subject directory installed; import idsvc.context (the app wiring) first")
    return _installed
