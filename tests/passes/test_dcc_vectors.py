"""The inspector against the EU Digital COVID Certificate test vectors in ../shared/data/dcc.

Each vector's EXPECTED* flags name what the layers must do (true = ok, false = failed, absent = not
tested). Entries of known_issues.csv are reported as skipped. Per-layer counts are printed (``-s``).
"""

from __future__ import annotations

import base64
import csv
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from idsvc.passes.inspect import TrustedSigner, inspect

FLAG_LAYER = {
    "EXPECTEDPICTUREDECODE": "picture",
    "EXPECTEDUNPREFIX": "prefix",
    "EXPECTEDB45DECODE": "base45",
    "EXPECTEDCOMPRESSION": "zlib",
    "EXPECTEDVERIFY": "cose",
    "EXPECTEDDECODE": "cbor",
    "EXPECTEDEXPIRATIONCHECK": "expiry",
}
# Upstream test names in known_issues.csv -> the layer they cover.
KNOWN_ISSUE_LAYER = {"test_cose_json": "cose", "test_cbor_json": "cbor"}


@pytest.mark.needs_shared
def test_every_dcc_vector(shared_dir: Path) -> None:
    root = shared_dir / "data" / "dcc"
    with (root / "known_issues.csv").open() as handle:
        known = {(r["country"], r["test_set"], KNOWN_ISSUE_LAYER.get(r["test_name"], r["test_name"])): r["reason"] for r in csv.DictReader(handle)}
    counts: dict[str, Counter[str]] = {layer: Counter() for layer in FLAG_LAYER.values()}
    mismatches = []
    vectors = sorted(p for p in root.rglob("*.json"))
    assert len(vectors) > 80
    for path in vectors:
        vector = json.loads(path.read_text())
        country, test_set = path.parent.name, path.stem
        ctx = vector["TESTCTX"]
        signers = [TrustedSigner.from_bytes(base64.b64decode(ctx["CERTIFICATE"]))] if ctx.get("CERTIFICATE") else []
        at = datetime.fromisoformat(ctx["VALIDATIONCLOCK"])
        image = base64.b64decode(vector["2DCODE"]) if vector.get("2DCODE") else None
        report = inspect(vector.get("PREFIX"), image=image, prefix="HC1", signers=signers, at=at)
        for flag, expected in vector.get("EXPECTEDRESULTS", {}).items():
            layer = FLAG_LAYER.get(flag)
            if layer is None:
                continue  # schema, key usage, JSON validity: outside the container layers
            if (country, test_set, layer) in known:
                counts[layer]["skipped (known issue)"] += 1
                continue
            if layer == "picture" and image is None:
                counts[layer]["skipped (no picture in vector)"] += 1
                continue
            got = report.layers[layer].status
            if got == ("ok" if expected else "failed"):
                counts[layer]["passed"] += 1
            else:
                counts[layer]["mismatch"] += 1
                mismatches.append(f"{country}/{test_set}: {layer} expected {'ok' if expected else 'failed'}, got {got} ({report.layers[layer].detail})")
    print("\nDCC vectors, per layer:")
    for layer, counter in counts.items():
        print(f"  {layer:8} " + ", ".join(f"{k}: {v}" for k, v in sorted(counter.items())))
    assert not mismatches, "\n".join(mismatches)
