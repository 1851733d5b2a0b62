"""Sizes of what revocation puts on the wire: status lists, a one-revocation delta, a site snapshot.

    .venv/bin/python bench/revocation_sizes.py [--flats 1600]

Everything is built by the service's own code on a throw-away SQLite database:

- the signed per-issuer status list (2 bits x 131,072 entries, zlib level 9, COSE_Sign1) with 0.1%,
  1% and 10% of the entries revoked at random indexes (one pass row per entry);
- a site of ``--flats`` flats, each with a tenant, a tenancy grant and a pass: the full signed sync
  feed snapshot, then the delta that one pass revocation produces and an empty (heartbeat) delta.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pass_verify import make_context
from idsvc.auth.principal import OPERATOR
from idsvc.core.db import utcnow
from idsvc.passes import issuing, keys, status
from idsvc.passes.claims import PassType
from idsvc.passes.models import Pass
from idsvc.registry import doors, people, schemas, sites, units
from idsvc.registry.models import DoorKind, PersonKind, Status
from idsvc.revocation import service as revocation
from idsvc.sync import feed


def status_list_sizes(workdir: Path) -> dict[str, int]:
    (workdir / "lists").mkdir()
    ctx = make_context(workdir / "lists")
    with ctx.db.session() as s:
        site = sites.create_site(s, OPERATOR, schemas.SiteIn(code="lists", name="Lists", timezone="Asia/Shanghai"))
        person = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site.id, display_name="P", kind=PersonKind.tenant))
        kid = keys.active_issuer_key(s, ctx.sealer).kid
        site_id, person_id = site.id, person.id
    sizes = {"0%": 0}
    with ctx.db.session() as s:
        sizes["0%"] = len(status.status_list(s, ctx.sealer, kid))
    revoked: list[int] = []
    indexes = random.Random(5).sample(range(status.LIST_SIZE), status.LIST_SIZE // 10)
    now = utcnow()
    for share, count in (("0.1%", status.LIST_SIZE // 1000), ("1%", status.LIST_SIZE // 100), ("10%", status.LIST_SIZE // 10)):
        new = indexes[len(revoked) : count]
        with ctx.db.session() as s:
            s.execute(insert(Pass), [
                {"pass_id": secrets.token_hex(16), "person_id": person_id, "site_id": site_id, "pass_type": PassType.tenant, "status": Status.revoked,
                 "status_index": i, "kid": kid, "scope": {}, "issued_at": now, "not_before": now, "expires_at": now + timedelta(days=7), "created_by": "bench"}
                for i in new
            ])
            revoked += new
            sizes[share] = len(status.status_list(s, ctx.sealer, kid))
    ctx.close()
    return sizes


def feed_sizes(workdir: Path, flats: int) -> dict[str, int]:
    (workdir / "feed").mkdir()
    ctx = make_context(workdir / "feed")
    now = utcnow()
    with ctx.db.session() as s:
        site = sites.create_site(s, OPERATOR, schemas.SiteIn(code="village", name="Village", timezone="Asia/Shanghai"))
        building = sites.create_building(s, OPERATOR, schemas.BuildingIn(site_id=site.id, code="b1", name="B1"))
        doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site.id, building_id=building.id, code="main", name="Main", kind=DoorKind.entrance))
        owner = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site.id, display_name="Owner", kind=PersonKind.owner))
        site_id = site.id
        for n in range(flats):
            unit = units.register_unit(s, OPERATOR, schemas.UnitIn(building_id=building.id, label=f"{n}", owner_id=owner.id))
            doors.create_door(s, OPERATOR, schemas.DoorIn(site_id=site_id, unit_id=unit.id, code=f"u{n}", name=f"Flat {n}", kind=DoorKind.unit_door))
            tenant = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=site_id, display_name=f"Tenant {n}", kind=PersonKind.tenant))
            units.add_tenant(s, OPERATOR, unit.id, schemas.TenancyIn(person_id=tenant.id, valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=365)))
            last = issuing.issue(s, ctx.sealer, OPERATOR, tenant.id)
    with ctx.db.session() as s:
        version, snapshot = feed.build(s, ctx.sealer, ctx.bus, ctx.settings, site_id)
        _, heartbeat = feed.build(s, ctx.sealer, ctx.bus, ctx.settings, site_id, version)
    with ctx.db.session() as s:
        revocation.change_pass(s, OPERATOR, last.row.id, revocation.Verb.revoke, "bench")
    with ctx.db.session() as s:
        _, delta = feed.build(s, ctx.sealer, ctx.bus, ctx.settings, site_id, version)
    ctx.close()
    return {"snapshot": len(snapshot), "delta_one_revocation": len(delta), "delta_empty": len(heartbeat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flats", type=int, default=1600, help="flats (tenant + grant + pass each) in the feed's site")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lists = status_list_sizes(Path(tmp))
        print(f"signed status list, {status.LIST_SIZE:,} entries x 2 bits ({status.LIST_SIZE // 4:,} bytes raw), zlib 9 + COSE_Sign1:")
        for share, size in lists.items():
            print(f"  {share:>5} revoked: {size:>7,} bytes")
        sizes = feed_sizes(Path(tmp), args.flats)
        print(f"signed sync feed of a site with {args.flats:,} flats (tenant, tenancy grant, pass each):")
        print(f"  full snapshot:               {sizes['snapshot']:>9,} bytes")
        print(f"  delta after one revocation:  {sizes['delta_one_revocation']:>9,} bytes")
        print(f"  delta with nothing changed:  {sizes['delta_empty']:>9,} bytes (signed heartbeat)")


if __name__ == "__main__":
    main()
