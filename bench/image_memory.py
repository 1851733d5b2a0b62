"""Peak memory of decoding uploaded pictures, in a fresh process per case.

    .venv/bin/python bench/image_memory.py

Each case builds a one-colour picture (a few hundred KB that claim width x height pixels), decodes it
with the faces' decoder (core/images.py: pixel budget from the header, 2048-pixel working size, two
decodes at a time) in N threads at once, and prints the growth of the process's peak RSS and what the
decoder answered. The same measurement guards tests/reliability/test_image_memory.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.reliability.test_image_memory import DEFAULT_MAX_PIXELS, _peak_growth

CASES = [
    ("PNG 6300x6300 (a 116 KB bomb)", 6300, 1, "PNG"),
    ("PNG 4096x4096, one", 4096, 1, "PNG"),
    ("PNG 4096x4096, six at once", 4096, 6, "PNG"),
    ("JPEG 4096x4096, one", 4096, 1, "JPEG"),
    ("JPEG 4096x4096, six at once", 4096, 6, "JPEG"),
    ("PNG 1920x1080 (a door camera frame), six at once", 1920, 6, "PNG"),
]


def main() -> None:
    for name, side, copies, kind in CASES:
        measured = _peak_growth(side, copies, kind, DEFAULT_MAX_PIXELS)
        print(json.dumps({"case": name, "peak_rss_growth_mb": round(float(measured["peak_growth_mb"]), 1), "refused": measured["errors"], "upload_kb": measured["upload_kb"]}))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
