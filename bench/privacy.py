"""What the personal-data lifecycle costs: audit hashing with commitments, verify, the scheme-2 re-hash,
erasure of a person with a year of decisions, retention, phone lookups, key rotation.

    .venv/bin/python bench/privacy.py [--events 50000] [--people 5000] [--database-url postgresql+psycopg://...]

On a throw-away database (SQLite by default), built by the service's own code. Baselines measured in
the same run: scheme-1 hashing (every field in clear, what the trail did before) for the chain
hash, and decrypting every person for a phone lookup (what a sealed column without a blind index
would force).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pass_verify import make_context
from idsvc.audit import chain
from idsvc.audit import service as audit
from idsvc.audit.models import AuditEvent, AuditHead
from idsvc.audit.rehash import rehash, scheme1_hash
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.core.sealing import Sealer, new_master_key
from idsvc.privacy import retention, rotation
from idsvc.privacy.erasure import erase_person
from idsvc.privacy.requests import ErasureOrExportRequest
from idsvc.registry import people, personal, schemas, sites
from idsvc.registry.models import Person, PersonKind


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def decision(person_id: int, days_ago: float, site_id: int) -> audit.NewEvent:
    return audit.NewEvent(
        kind="decision", actor="device:1", at=utcnow() - timedelta(days=days_ago), site_id=site_id, door_id=1, person_id=person_id,
        data={"decision_id": uuid.uuid4().hex, "method": "qr", "allow": True, "reasons": [], "versions": {"grant_id": 1}},
    )


def hashing(rounds: int) -> dict[str, float]:
    """Per-event CPU cost of the chain hash: scheme 1 against scheme 2 (commitment + public hash)."""
    event = SimpleNamespace(
        seq=1, at=utcnow(), kind="decision", actor="device:1", site_id=1, unit_id=2, door_id=3, person_id=4, entity_type="pass", entity_id=5,
        data=chain.storable_data({"decision_id": uuid.uuid4().hex, "method": "qr", "allow": True, "reasons": [], "versions": {"grant_id": 1}}),
        personal_digest=None,
    )
    one, two = [], []
    for _ in range(5):
        one.append(timed(lambda: [scheme1_hash("0" * 64, event, event.at.isoformat()) for _ in range(rounds)]) / rounds)

        def scheme2() -> None:
            for _ in range(rounds):
                salt = chain.new_salt()
                event.personal_digest = chain.commitment(salt, chain.personal_part(event))  # type: ignore[arg-type]
                chain.chain_hash("0" * 64, event)

        two.append(timed(scheme2) / rounds)
    return {"scheme1_us": statistics.median(one) * 1e6, "scheme2_us": statistics.median(two) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="decisions in the trail")
    parser.add_argument("--people", type=int, default=5_000, help="people in the site (phone lookup, rotation)")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    out: dict[str, str] = {}

    h = hashing(20_000)
    out["chain hash per event, scheme 1 (baseline) / scheme 2"] = f"{h['scheme1_us']:.1f} / {h['scheme2_us']:.1f} us ({h['scheme2_us'] / h['scheme1_us']:.2f}x)"

    with tempfile.TemporaryDirectory() as tmp:
        ctx: AppContext = make_context(Path(tmp), args.database_url)
        with ctx.db.session() as s:
            site = sites.create_site(s, OPERATOR, schemas.SiteIn(code="bench", name="Bench", timezone="Asia/Shanghai")).id
            ids = [
                people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site, display_name=f"租客{n}", kind=PersonKind.tenant, phone=f"+86 138 {n:08d}")).id
                for n in range(args.people)
            ]
        subject, others = ids[0], ids[1:]

        # Append: a year of the subject's decisions (3 a day) among everyone else's, batches of 1,000 as the decision log writes.
        year = [decision(subject, d + h / 24, site) for d in range(365) for h in (8, 13, 19)]
        rest = [decision(others[n % len(others)], (n % 400) + 0.5, site) for n in range(args.events - len(year))]
        events = sorted(year + rest, key=lambda e: e.at)  # type: ignore[arg-type, return-value]

        def append_all() -> None:
            for start in range(0, len(events), 1000):
                with ctx.db.session() as s:
                    audit.append(s, *events[start:start + 1000])

        seconds = timed(append_all)
        out[f"append {len(events):,} decisions, batches of 1,000"] = f"{len(events) / seconds:,.0f} events/s"

        with ctx.db.session() as s:
            report = audit.verify(s)
            assert report.ok, report.problems
            seconds = timed(lambda: audit.verify(s))
        out[f"verify {report.events_checked:,} events"] = f"{report.events_checked / seconds:,.0f} events/s"

        # The scheme-2 re-hash of migration 0006: first turn the trail into the scheme-1 trail an old
        # installation has (untimed), then time the migration's work on it.
        with ctx.db.engine.begin() as connection:
            prev, rows = chain.GENESIS_HASH, []
            for row in connection.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)):
                new = scheme1_hash(prev, row, row.at.isoformat())
                rows.append({"s": row.seq, "p": prev, "h": new})
                prev = new
            table = AuditEvent.__table__
            connection.execute(table.update().where(table.c.seq == sa.bindparam("s")).values(prev_hash=sa.bindparam("p"), hash=sa.bindparam("h"), personal_salt=None, personal_digest=None), rows)
            connection.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(hash=prev))
        with ctx.db.engine.begin() as connection:
            seconds = timed(lambda: rehash(connection))
        with ctx.db.session() as s:
            assert audit.verify(s).ok
        out[f"re-hash (migration 0006) of {report.events_checked:,} events"] = f"{report.events_checked / seconds:,.0f} events/s"

        # Phone lookup: the blind index against opening every person.
        wanted = f"+86 138 {args.people - 1:08d}"
        with ctx.db.session() as s:
            index_times = [timed(lambda: s.scalar(sa.select(Person.id).where(Person.site_id == site, personal.with_phone(s, wanted)))) for _ in range(20)]

            def scan() -> int | None:
                for person in s.scalars(sa.select(Person).where(Person.site_id == site)):
                    if personal.read(s, person).phone == wanted:
                        return person.id
                return None

            scan_times = [timed(scan) for _ in range(3)]
        index_ms, scan_ms = statistics.median(index_times) * 1e3, statistics.median(scan_times) * 1e3
        out[f"find a person by phone among {args.people:,}: blind index / decrypt every row (baseline)"] = f"{index_ms:.2f} / {scan_ms:.0f} ms ({scan_ms / index_ms:,.0f}x)"

        # Erasure of the subject: a year of decisions pseudonymised, chain still verifying.
        with ctx.db.session() as s:
            seconds = timed(lambda: erase_person(s, OPERATOR, subject, ErasureOrExportRequest(requester="the tenant", purpose="bench")))
        out[f"erase a person with {len(year):,} decisions in a trail of {len(events):,}"] = f"{seconds * 1e3:,.0f} ms"

        # Retention: everything older than 180 days pseudonymised, batches of 5,000.
        with ctx.db.session() as s:
            cutoff = utcnow() - timedelta(days=180)
            due = s.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.personal_salt.is_not(None), AuditEvent.at < cutoff, AuditEvent.kind == "decision")) or 0
        result: dict[str, object] = {}
        seconds = timed(lambda: result.setdefault("r", retention.run(ctx.db, ctx.settings)))
        done = result["r"].summary()["decisions_pseudonymised"]  # type: ignore[attr-defined]
        assert done == due, (done, due)
        out[f"retention: pseudonymise {done:,} decisions older than 180 days"] = f"{done / seconds:,.0f} events/s"
        with ctx.db.session() as s:
            assert audit.verify(s).ok

        # Master-key rotation of every person.
        current = (Path(tmp) / "master.key").read_text().strip()
        both = Sealer.from_config(f"{new_master_key()},{current}", Path(tmp))
        seconds = timed(lambda: rotation.rotate(ctx.db, both, batch=500))
        out[f"keys rotate: re-seal {args.people:,} people (batches of 500)"] = f"{args.people / seconds:,.0f} rows/s"
        backend = ctx.db.engine.dialect.name
        ctx.close()

    print(f"backend: {backend}")
    width = max(len(k) for k in out)
    for key, value in out.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
