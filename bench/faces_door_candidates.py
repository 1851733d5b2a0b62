"""What searching only among a door's people costs: the candidate set and the masked 1:N search.

    .venv/bin/python bench/faces_door_candidates.py [--people 1000 5000 20000]

A park gate whose door group grants N people (SQLite, rows inserted directly); the access index
computes who may pass now once per door and minute (``AccessIndex.people_allowed``), then every face
decision masks the site's gallery to them (``gallery.search_gallery``, synthetic 512-d templates).
Prints the median of the first computation in a minute (cold: a new minute or a registry change)
and of the masked search, beside the unmasked search on the same gallery. One BLAS thread, as
bench/faces_gallery.py.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.db.migrate import upgrade
from idsvc.faces.gallery import build_gallery, search_gallery
from idsvc.registry.models import Door, DoorGroup, DoorKind, Grant, Person, PersonKind, Site


def seed(ctx: AppContext, people: int) -> int:
    now = utcnow()
    with ctx.db.session() as s:
        site = Site(code="park", name="Park", timezone="Asia/Shanghai", settings={})
        s.add(site)
        s.flush()
        door = Door(site_id=site.id, code="gate", name="Gate", kind=DoorKind.gate_lane)
        group = DoorGroup(site_id=site.id, name="gates", doors=[door])
        s.add_all([door, group])
        s.flush()
        for i in range(people):
            person = Person(site_id=site.id, kind=PersonKind.employee, pseudonym=f"ps{i:08d}")  # no personal fields: none are read here
            s.add(person)
            s.flush()
            s.add(Grant(site_id=site.id, person_id=person.id, door_group_id=group.id, valid_from=now - timedelta(days=1),
                        valid_until=now + timedelta(days=30), created_by="bench"))  # fmt: skip
        return door.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, nargs="*", default=[1000, 5000, 20000])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    print("| people at the gate | candidates, first in a minute | masked search | unmasked search |")
    print("|---|---|---|---|")
    for people in args.people:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), _env_file=None)  # type: ignore[call-arg]
            upgrade(settings.effective_database_url)
            ctx = AppContext.from_settings(settings)
            try:
                door_id = seed(ctx, people)
                at = utcnow()
                ctx.access.people_allowed(door_id, at)  # load the site's copy once
                cold = []
                for i in range(args.repeat):
                    start = time.perf_counter()
                    allowed = ctx.access.people_allowed(door_id, at + timedelta(minutes=i + 1))  # a new minute each time
                    cold.append(time.perf_counter() - start)
                assert len(allowed) == people
                vectors = rng.standard_normal((people, 512), dtype=np.float32)
                gallery = build_gallery("bench", sorted(allowed), list(vectors / np.linalg.norm(vectors, axis=1, keepdims=True)), 512)
                probe = gallery.matrix[0]
                masked, plain = [], []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    search_gallery(gallery, probe, allowed)
                    masked.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    search_gallery(gallery, probe, None)
                    plain.append(time.perf_counter() - start)
                ms = [statistics.median(x) * 1000 for x in (cold, masked, plain)]
                print(f"| {people:,} | {ms[0]:.1f} ms | {ms[1]:.2f} ms | {ms[2]:.2f} ms |")
            finally:
                ctx.close()


if __name__ == "__main__":
    main()
