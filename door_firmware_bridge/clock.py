"""Device clocks: how far a terminal's own time may be from the bridge's, both ways.

A terminal stamps its events with its own clock (Hikvision ``dateTime``, with its offset). Freshness
is the bridge's business (it times every presentation from its arrival, on the monotonic clock);
the terminal's stamp is only checked to be within ``max_skew_s`` of the arrival, in both directions:
a terminal 8 s slow is fine, one 2 minutes fast is not (its stamps prove nothing, and a replayed
old event would look new). The bound is the site's setting ``Site.settings["bridge"]["max_clock_skew_s"]``
(default 30 s), carried to the bridge in its signed feed.
"""

from __future__ import annotations

from datetime import datetime

DEFAULT_MAX_SKEW_S = 30.0


def skew_reason(stamped: datetime, received: datetime, max_skew_s: float) -> str | None:
    """``presentation_late`` (stamped too long before arrival), ``presentation_from_future`` (after), else None."""
    skew = (stamped - received).total_seconds()
    if skew < -max_skew_s:
        return "presentation_late"
    if skew > max_skew_s:
        return "presentation_from_future"
    return None
