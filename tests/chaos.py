"""A simulated population at a door, and the invariants that must hold whatever faults are injected.

Used by the short fault suite in CI (tests/reliability/test_chaos.py) and the long form on demand
(bench/chaos.py). The population, built through the services on a test world (tests/world.py):

- tenants of flat 101 with printed passes and phone passes: may open door 1 (``may_open``);
- strangers: tenant 2 (a grant on another flat) and people with no grant at all;
- revoked passes, expired passes, forged passes (a byte of the signature changed);
- replayed phone codes (the same presentation twice: only the first may open) and phone codes
  from a clock five minutes off (skew: never opens).

Each attempt is a ``POST /v1/device/verify`` by door 1's lock. A :class:`Tally` counts answers and
checks the invariants: no wrongful open (an allow for an attempt that may not open), and no lost
event (every decision the lock was answered is in the audit trail, :func:`lost_decisions`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from unittest import mock

from sqlalchemy import select

from idsvc.audit.models import AuditEvent
from idsvc.auth.principal import OPERATOR
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.passes import codec, dynamic, issuing
from idsvc.registry import people, schemas, units
from idsvc.registry.models import PersonKind
from idsvc.revocation.service import Verb, change_pass
from tests.world import World

SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Attempt:
    kind: str
    qr_text: str
    may_open: bool


@dataclass
class Population:
    door_id: int
    lock_headers: dict[str, str]
    printed: list[str] = field(default_factory=list)  # may open
    phones: list[tuple[dynamic.Holder, str]] = field(default_factory=list)  # may open, once per code
    strangers: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    _shown: set[tuple[int, int]] = field(default_factory=set)

    def _unused_phone(self) -> tuple[dynamic.Holder, str] | None:
        """A phone pass not yet shown at this door in the current 30-second step (a phone code opens a
        door once per step: a second code of the same step is ``presentation_replayed``, by design);
        None when every phone has been shown in this step."""
        step = dynamic.step_at(utcnow())
        for index in range(len(self.phones)):
            if (index, step) not in self._shown:
                self._shown.add((index, step))
                return self.phones[index]
        return None

    def attempts(self, rng: random.Random) -> list[Attempt]:
        """One round: a few of every kind, shuffled. A fresh phone code may open once; its replay never."""
        round_: list[Attempt] = [Attempt("tenant", rng.choice(self.printed), True) for _ in range(4)]
        phone = self._unused_phone()
        if phone is not None:
            fresh = phone[0].present(phone[1], door_id=self.door_id, challenge=rng.randbytes(8))
            round_ += [Attempt("phone", fresh, True), Attempt("replay", fresh, False)]
        holder, text = rng.choice(self.phones)
        round_.append(Attempt("skewed", holder.present(text, door_id=self.door_id, at=utcnow() + SKEW), False))
        round_ += [Attempt("stranger", rng.choice(self.strangers), False), Attempt("revoked", rng.choice(self.revoked), False)]
        round_ += [Attempt("expired", rng.choice(self.expired), False), Attempt("forged", forged(rng.choice(self.printed)), False)]
        first, rest = round_[:5], round_[5:]  # the replay (if any) must come after its original
        rng.shuffle(first)
        rng.shuffle(rest)
        return first + rest


def forged(text: str) -> str:
    """The same pass with one byte of its signature changed (the last bytes of the COSE_Sign1)."""
    data = bytearray(codec.decode_text(text))
    data[-3] ^= 0x01
    return codec.encode_text(bytes(data))


def build_population(ctx: AppContext, world: World, tenants: int = 12, phones_per_tenant: int = 1) -> Population:
    now = utcnow()
    door = world.ids["door1"]
    population = Population(door, world.auth("device1"))
    with ctx.db.session() as s:
        residents = [world.ids["tenant1"]]
        for n in range(tenants - 1):
            person = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=world.ids["site_a"], display_name=f"Chaos tenant {n}", kind=PersonKind.tenant))
            units.add_tenant(s, OPERATOR, world.ids["unit1"], schemas.TenancyIn(person_id=person.id, valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30)))
            residents.append(person.id)
        for person_id in residents:
            population.printed.append(issuing.issue(s, ctx.sealer, OPERATOR, person_id).text)
            for _ in range(phones_per_tenant):  # each phone code opens once per 30-second step: more phones, more phone attempts
                holder = dynamic.Holder()
                population.phones.append((holder, issuing.issue(s, ctx.sealer, OPERATOR, person_id, holder_public_key=holder.public_key).text))
            revoked = issuing.issue(s, ctx.sealer, OPERATOR, person_id)
            population.revoked.append(revoked.text)
            change_pass(s, OPERATOR, revoked.row.id, Verb.revoke, "chaos: lost phone")
            # Issued two days ago for one day: signed with an expiry in the past.
            with mock.patch.object(issuing, "utcnow", lambda: now - timedelta(days=2)):
                population.expired.append(issuing.issue(s, ctx.sealer, OPERATOR, person_id, lifetime=timedelta(days=1)).text)
        for n in range(3):
            stranger = people.create_person(s, OPERATOR, schemas.PersonIn(site_id=world.ids["site_a"], display_name=f"Stranger {n}", kind=PersonKind.visitor))
            population.strangers.append(issuing.issue(s, ctx.sealer, OPERATOR, stranger.id).text)
        population.strangers.append(issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant2"]).text)  # a grant, but for flat 102
    return population


@dataclass
class Tally:
    answers: Counter[str] = field(default_factory=Counter)  # "allow", "deny", "503 service_degraded", "timeout", ...
    by_kind: Counter[tuple[str, str]] = field(default_factory=Counter)
    wrongful_opens: list[Attempt] = field(default_factory=list)
    decided: list[str] = field(default_factory=list)  # decision ids the lock was answered (200)
    server_errors: int = 0  # 500s: a bug, never acceptable

    def record(self, attempt: Attempt, status: int | None, body: dict | None) -> None:  # type: ignore[type-arg]
        if status is None:
            outcome = "no answer"
        elif status == 200 and body is not None:
            outcome = body["decision"]
            self.decided.append(body["decision_id"])
            if body["allow"] and not attempt.may_open:
                self.wrongful_opens.append(attempt)
        else:
            code = (body or {}).get("error", {}).get("code", "?")
            outcome = f"{status} {code}"
            self.server_errors += status == 500
            if status == 503 and code == "replay_store_unavailable":
                self.decided.append(body["error"]["details"]["decision_id"])  # type: ignore[index]  # journalled as a deny
        self.answers[outcome] += 1
        self.by_kind[(attempt.kind, outcome)] += 1

    def allows_of(self, kind: str) -> int:
        return self.by_kind[(kind, "allow")]


def lost_decisions(ctx: AppContext, decided: list[str]) -> list[str]:
    """Decision ids a lock was answered that are not in the audit trail (call after the journal is flushed)."""
    with ctx.db.session() as s:
        stored = set(s.scalars(select(AuditEvent.data["decision_id"].as_string()).where(AuditEvent.kind == "decision")))
    return [d for d in decided if d not in stored]


def drive(post: Callable[[Attempt], tuple[int | None, dict | None]], population: Population, rounds: int, tally: Tally, seed: int = 11) -> None:  # type: ignore[type-arg]
    rng = random.Random(seed)
    for _ in range(rounds):
        for attempt in population.attempts(rng):
            status, body = post(attempt)
            tally.record(attempt, status, body)
