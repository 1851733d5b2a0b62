"""Imports every domain's models so ``Base.metadata`` knows the whole schema (Alembic, tests)."""

from idsvc.alarms import models as alarm_models  # noqa: F401
from idsvc.audit import models as audit_models  # noqa: F401
from idsvc.auth import models as auth_models  # noqa: F401
from idsvc.core import scheduler as scheduler_models  # noqa: F401
from idsvc.core.db import Base
from idsvc.device_events import models as device_event_models  # noqa: F401
from idsvc.faces import models as face_models  # noqa: F401
from idsvc.passes import models as pass_models  # noqa: F401
from idsvc.registry import models as registry_models  # noqa: F401
from idsvc.sync import models as sync_models  # noqa: F401

metadata = Base.metadata
