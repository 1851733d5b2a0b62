"""The long-lived objects one service process shares: settings, database, key-value store, sealer."""

from __future__ import annotations

from dataclasses import dataclass, field

from idsvc.auth.cache import PrincipalCache
from idsvc.config import Settings
from idsvc.core.db import Database
from idsvc.core.kv import KeyValueStore, make_store
from idsvc.core.sealing import Sealer


@dataclass
class AppContext:
    settings: Settings
    db: Database
    kv: KeyValueStore
    sealer: Sealer
    principals: PrincipalCache = field(default_factory=PrincipalCache)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        return cls(
            settings=settings,
            db=Database(settings.effective_database_url),
            kv=make_store(settings.redis_url, settings.redis_prefix),
            sealer=Sealer.from_config(settings.master_key, settings.data_dir),
        )

    def close(self) -> None:
        self.db.dispose()
