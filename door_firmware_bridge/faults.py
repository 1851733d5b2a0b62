"""Named points on the unlock path where a fault-injection run may kill the bridge.

The bridge calls :func:`checkpoint` at each step of an unlock. Normally nothing happens. When the
process was started with ``DOOR_BRIDGE_CRASH_AT=<point>`` it kills itself with SIGKILL the first time
it reaches that point, exactly as a power cut or the OOM killer would, so tests and bench/chaos.py
can stop the bridge at a chosen step and check what the next start makes of it (docs/bridge.md,
"Restarts").
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "DOOR_BRIDGE_CRASH_AT"
POINTS = (
    "decision_journalled",  # the allow is on disk, no command yet
    "command_journalled",  # command_sent is on disk, the command is not handed to the device yet
    "command_sent",  # the device has the command, no answer yet
    "result_received",  # the device answered, the result is not journalled yet
)
_crash_at = os.environ.get(CRASH_ENV, "")


def checkpoint(point: str) -> None:
    if point == _crash_at:
        os.kill(os.getpid(), signal.SIGKILL)
