"""Live alarm notices on the change-notice bus, sent only once the transaction has committed.

Shape (docs/alarms.md): ``{"kind": "alarm", "event": "raised" | "repeated" | "acknowledged" |
"cleared", "alarm": {...the alarm as the API returns it...}}``. The notice carries the alarm's full
state, so a subscriber that gets one twice (Redis delivers a node's own notices back to it) or
late can simply apply it. It has no ``sites``/``version`` keys: those mean "feed data changed" to
the access index and the bridges' streams.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from idsvc.core.bus import Bus, Notice

log = logging.getLogger(__name__)
KIND = "alarm"
_KEY = "alarm_notices"


def queue(session: Session, bus: Bus, event_name: str, alarm: dict[str, Any]) -> None:
    session.info.setdefault(_KEY, []).append((bus, {"kind": KIND, "event": event_name, "alarm": alarm}))


def is_alarm_notice(notice: Notice) -> bool:
    return notice.get("kind") == KIND and isinstance(notice.get("alarm"), dict)


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    for bus, notice in session.info.pop(_KEY, []):
        try:
            bus.publish(notice)
        except Exception:  # committed; the list endpoint still shows it
            log.exception("could not publish alarm notice for alarm %s", notice["alarm"].get("id"))


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)
