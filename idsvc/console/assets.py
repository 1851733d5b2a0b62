"""The console's static files: only those listed in static/MANIFEST.json, each checked against its sha256.

Everything the browser loads comes from the package (sites without internet use the console too);
vendored libraries are pinned by version and hash in the manifest, with their licence files beside
them, and tests/console/test_assets.py recomputes every hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
MANIFEST = STATIC_DIR / "MANIFEST.json"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".txt": "text/plain"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def manifest() -> dict[str, dict[str, str]]:
    return json.loads(MANIFEST.read_text())["files"]  # type: ignore[no-any-return]


@cache
def load(name: str) -> Asset | None:
    """The named file if the manifest lists it and its bytes match the pinned hash, else None."""
    entry = manifest().get(name)
    if entry is None:
        return None
    body = (STATIC_DIR / name).read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    if digest != entry["sha256"]:
        raise RuntimeError(f"console asset {name} does not match its sha256 in {MANIFEST}; reinstall idsvc")
    return Asset(body, _TYPES.get(Path(name).suffix, "application/octet-stream"), f'"{digest[:16]}"')


def rehash() -> list[str]:
    """After editing console.js or console.css: write their new hashes (vendored files are re-pinned only by hand)."""
    data = json.loads(MANIFEST.read_text())
    changed = []
    for name, entry in data["files"].items():
        digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()
        if digest != entry["sha256"] and entry.get("package") == "idsvc":
            entry["sha256"] = digest
            changed.append(name)
    MANIFEST.write_text(json.dumps(data, indent=1) + "\n")
    return changed


if __name__ == "__main__":
    print("re-pinned:", ", ".join(rehash()) or "nothing changed")
