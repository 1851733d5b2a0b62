"""What a test needs from the machine (../shared, the face pack, a broker, a tool): skip or fail.

On a developer's machine a missing prerequisite skips the test with the fix in its message. Under CI
(``CI=true``) it fails: a skipped test is a green test that tested nothing, so a CI that lost
../shared or the face pack must go red instead of passing with the face tests silently skipped.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(reason: str) -> NoReturn:
    """Skip locally, fail under CI, naming what is missing and how to get it."""
    if under_ci():
        pytest.fail(f"{reason} [CI=true: a missing prerequisite fails the run instead of skipping]", pytrace=False)
    pytest.skip(reason)
