"""The long-lived objects one service process shares: settings, database, key-value store, sealer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from idsvc.audit.decision_log import DecisionLog
from idsvc.auth import subjects
from idsvc.auth.cache import PrincipalCache
from idsvc.config import Settings
from idsvc.core.bus import Bus, Notice, make_bus
from idsvc.core.db import Database
from idsvc.core.kv import KeyValueStore, RedisStore, make_store
from idsvc.core.sealing import Sealer
from idsvc.registry.index import AccessIndex
from idsvc.registry.subjects import RegistrySubjects
from idsvc.revocation.denyset import DenySet
from idsvc.sync import changes

# auth reads the subjects of API keys through this (auth sits below the registry).
subjects.install(RegistrySubjects())

if TYPE_CHECKING:
    from idsvc.faces.policy import FaceOnlyCheck


@dataclass
class AppContext:
    settings: Settings
    db: Database
    kv: KeyValueStore
    sealer: Sealer
    principals: PrincipalCache = field(default_factory=PrincipalCache)
    # Revocation notices between nodes (Redis pub/sub, or in-process) and the instant deny set.
    bus: Bus = field(default_factory=Bus)
    deny: DenySet = field(init=False)
    # What the authorisation step reads, copied in process and dropped per site on change notices.
    access: AccessIndex = field(init=False)
    # Door decisions are audited in batches while an app runs (set by create_app's lifespan).
    decision_log: DecisionLog | None = None

    def __post_init__(self) -> None:
        client = self.kv.client if isinstance(self.kv, RedisStore) else None
        self.deny = DenySet(client, self.settings.redis_prefix, self.bus)
        changes.attach(self.db.engine, changes.Propagation(self.bus, self.deny))
        self.bus.subscribe(self._forget_principals)
        self.access = AccessIndex(self.db, self.bus, lambda session: changes.current_version(session)[0])

    @property
    def face_only_check(self) -> FaceOnlyCheck:
        """The registry's check for face_only doors. Imported here, not at the top: the face engine
        (onnxruntime, OpenCV) is loaded only by processes that configure or use faces."""
        from idsvc.faces.policy import FaceOnlyCheck

        return FaceOnlyCheck(self.settings)

    def _forget_principals(self, notice: Notice) -> None:
        """A device or key changed somewhere: drop the one-second key memory now, not in a second."""
        if notice.get("auth") or notice.get("kind") == "resync":
            self.principals.clear()

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        kv = make_store(settings.redis_url, settings.redis_prefix, settings.redis_timeout_s)
        sealer = Sealer.from_config(settings.master_key, settings.data_dir)
        return cls(
            settings=settings,
            db=Database(settings.effective_database_url, sealer, settings.db_timeout_s),
            kv=kv,
            sealer=sealer,
            bus=make_bus(kv.client if isinstance(kv, RedisStore) else None, settings.redis_prefix),
        )

    def close(self) -> None:
        self.bus.close()
        self.db.dispose()
