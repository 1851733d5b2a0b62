"""How long emission records are kept, and the scheduler job that deletes older ones.

The Regulations on the Administration of Pollutant Discharge Permits (2021, art. 21) require a
discharging unit's original monitoring records to be kept for at least five years, so the data
messages (minute, hour, day: CN 2051, 2061, 2031) are kept that long. Real-time messages (CN 2011)
are by far the most numerous (one per station and pollutant every 30-60 s); a district whose
authority accepts the aggregates as the record may keep them for less (docs/alarms.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from idsvc.alarms.models import EmissionRecord

REAL_TIME = "2011"


def prune(session: Session, now: datetime, *, keep_days: int, real_time_keep_days: int, dry_run: bool = False) -> dict[str, int]:
    """Delete (or, on a dry run, count) records whose data time is older than their keep period."""
    older = {
        "real_time_deleted": (EmissionRecord.cn == REAL_TIME) & (EmissionRecord.data_time < now - timedelta(days=real_time_keep_days)),
        "aggregates_deleted": (EmissionRecord.cn != REAL_TIME) & (EmissionRecord.data_time < now - timedelta(days=keep_days)),
    }
    result = {}
    for name, condition in older.items():
        if dry_run:
            result[name] = session.scalar(select(func.count()).select_from(EmissionRecord).where(condition)) or 0
        else:
            result[name] = session.execute(delete(EmissionRecord).where(condition)).rowcount
    return result
