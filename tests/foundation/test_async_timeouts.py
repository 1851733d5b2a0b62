"""Timed waits use ``asyncio.timeout``, never ``asyncio.wait_for``.

On Python 3.11 (the oldest we support) ``wait_for`` returns the result and drops the caller's
cancellation when the awaited thing completes in the same loop turn as the cancel. A loop that waits
that way can outlive its own shutdown (the bridge once ignored SIGTERM so). ``asyncio.timeout``
counts cancellations on the task and has no such window.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_service_and_bridge_code_never_use_wait_for() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{n}" for package in ("idsvc", "door_firmware_bridge") for path in sorted((ROOT / package).rglob("*.py"))
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if re.search(r"\bwait_for\(", line)]
    assert offenders == [], "use `async with asyncio.timeout(t): await ...` instead of asyncio.wait_for: " + ", ".join(offenders)
