"""1:N identification time against per-site galleries of 1k / 10k / 100k templates (synthetic vectors).

    .venv/bin/python bench/faces_gallery.py [--queries 300]

Times the service's own search (Gallery.best: one float32 matrix-vector product plus argmax), single
thread as the service runs it (OPENBLAS/OMP threads pinned to 1 before numpy loads), and the cost of
(re)loading a gallery: opening each AES-GCM sealed template.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import statistics
import time

import numpy as np

from idsvc.core.sealing import Sealer, new_master_key
from idsvc.faces.gallery import build_gallery, template_aad

def unit_vectors(count: int, rng: np.random.Generator, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((count, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--dim", type=int, default=704, help="template length: 704 for the default pack, 512 for faceplugin-0.0.1")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    probes = unit_vectors(args.queries, rng, args.dim)
    results = {}
    for size in (1_000, 10_000, 100_000):
        vectors = unit_vectors(size, rng, args.dim)
        gallery = build_gallery("bench", list(range(size)), list(vectors), args.dim)
        gallery.best(probes[0])  # warm the caches once
        samples = []
        for probe in probes:
            start = time.perf_counter()
            gallery.best(probe)
            samples.append(time.perf_counter() - start)
        samples.sort()
        results[f"{size}"] = {
            "median_ms": round(statistics.median(samples) * 1000, 3),
            "p99_ms": round(samples[int(len(samples) * 0.99) - 1] * 1000, 3),
            "memory_mb": round(gallery.matrix.nbytes / 2**20, 1),
        }

    # Reload cost: what a node pays once after a template change (per template, then scaled).
    sealer = Sealer.from_config(new_master_key(), data_dir=None)  # type: ignore[arg-type]
    blobs = [sealer.seal(v.tobytes(), template_aad(1, i, "bench")) for i, v in enumerate(unit_vectors(5_000, rng, args.dim))]
    start = time.perf_counter()
    for i, blob in enumerate(blobs):
        np.frombuffer(sealer.open(blob, template_aad(1, i, "bench")), dtype="<f4")
    per_template_us = (time.perf_counter() - start) / len(blobs) * 1e6
    results["reload"] = {"open_per_template_us": round(per_template_us, 1), "estimated_100k_s": round(per_template_us * 100_000 / 1e6, 2)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
