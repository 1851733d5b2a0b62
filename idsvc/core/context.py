"""The process's long-lived objects as every layer may use them.

``idsvc.context.AppContext`` (the app wiring, at the top) is the one implementation. It also holds
the parts of higher layers (the access index, the deny set, ...); a layer that needs one of those
names it in its own protocol that extends this one (``auth.deps.AuthContext``,
``registry.index.DoorContext``, ``passes.verify.PassContext``), so no lower package imports the wiring.
"""

from __future__ import annotations

from typing import Protocol

from idsvc.config import Settings
from idsvc.core.bus import Bus
from idsvc.core.db import Database
from idsvc.core.kv import KeyValueStore
from idsvc.core.sealing import Sealer


class ServiceContext(Protocol):
    settings: Settings
    db: Database
    kv: KeyValueStore
    sealer: Sealer
    bus: Bus
