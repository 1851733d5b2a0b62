"""Small-cell suppression for published counts of people, primary and secondary (complementary).

Primary: a count from 1 to 4 is shown as ``"<5"`` (small cells could name a household); 0 stays 0.
Secondary: counts are published in groups that add up, a total and its parts (a site's arrivals and
its buildings', a row's residents and its provinces, a site's arrivals and its days). A reader who
knows that a ``"<5"`` is 1 to 4 and that every other hidden cell is at least 5 (a shown count is 0 or
at least 5) can narrow each hidden cell by subtraction, group by group; where that pins a hidden cell
to one value, one more cell of its group is hidden, shown as ``"x"``: the smallest non-zero part
still shown, else the total. Hiding a cell can expose another group, so this runs until no hidden
cell can be pinned. docs/console.md describes it and what it does not cover (solving several groups
at once); tests/console/test_suppression.py attacks the result group by group.

The groups are treated as exact sums even where they are not quite (a resident of two buildings
counts once on the site's row): that only ever hides more.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

SMALL = 5
PRIMARY = "<5"
SECONDARY = "x"
MAX_PASSES = 50
Cell = int | str
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Group(Generic[K]):
    """Cells that add up: ``total`` = the sum of ``parts``."""

    total: K
    parts: Sequence[K]


def protect(values: Mapping[K, int], groups: Sequence[Group[K]]) -> dict[K, Cell]:
    """Each cell as published: its count, ``"<5"`` (1 to 4) or ``"x"`` (hidden so that no hidden cell can be worked out)."""
    primary = {k for k, v in values.items() if 0 < v < SMALL}
    hidden = set(primary)
    of_cell: dict[K, list[Group[K]]] = {}
    for group in groups:
        for k in (group.total, *group.parts):
            of_cell.setdefault(k, []).append(group)
    while True:
        bounds = narrowed(values, groups, hidden, primary)
        pinned = [k for k in hidden if bounds[k][0] == bounds[k][1]]
        extra = next((e for k in pinned for g in of_cell[k] if (e := _next_to_hide(values, g, hidden)) is not None), None)
        if extra is None:
            break
        hidden.add(extra)
    return {k: PRIMARY if k in primary else SECONDARY if k in hidden else v for k, v in values.items()}


def narrowed(values: Mapping[K, int], groups: Sequence[Group[K]], hidden: set[K], primary: set[K]) -> dict[K, tuple[float, float]]:
    """What a reader can tell of each hidden cell: the interval left after subtracting, over every group, until nothing changes."""
    bounds: dict[K, tuple[float, float]] = {k: (1, SMALL - 1) if k in primary else (SMALL, math.inf) for k in hidden}
    changed, passes = True, 0
    while changed and passes < MAX_PASSES:  # figures that do not quite add up could narrow for ever
        changed, passes = False, passes + 1
        for group in groups:
            # sum(parts) - total = 0; the shown terms are a constant, each hidden one is in its interval.
            terms = [(k, 1) for k in group.parts] + [(group.total, -1)]
            constant = sum(sign * values[k] for k, sign in terms if k not in hidden)
            unknown = [(k, sign) for k, sign in terms if k in hidden]
            low = sum(bounds[k][0] if sign > 0 else -bounds[k][1] for k, sign in unknown)
            high = sum(bounds[k][1] if sign > 0 else -bounds[k][0] for k, sign in unknown)
            for k, sign in unknown:
                own_low, own_high = (bounds[k][0], bounds[k][1]) if sign > 0 else (-bounds[k][1], -bounds[k][0])
                others_low = low - own_low if math.isfinite(own_low) else _sum_without(bounds, unknown, k, lower=True)
                others_high = high - own_high if math.isfinite(own_high) else _sum_without(bounds, unknown, k, lower=False)
                term_low, term_high = -constant - others_high, -constant - others_low  # sign * x_k
                lo, hi = (term_low, term_high) if sign > 0 else (-term_high, -term_low)
                new = (max(bounds[k][0], lo), min(bounds[k][1], hi))
                if new != bounds[k]:
                    bounds[k] = new
                    changed = True
                    low = sum(bounds[v][0] if s > 0 else -bounds[v][1] for v, s in unknown)
                    high = sum(bounds[v][1] if s > 0 else -bounds[v][0] for v, s in unknown)
    return bounds


def _sum_without(bounds: Mapping[K, tuple[float, float]], unknown: Sequence[tuple[K, int]], skip: K, *, lower: bool) -> float:
    """The bound of the other hidden terms' sum, when this term's own bound is infinite (inf - inf is no number)."""
    if lower:
        return sum(bounds[v][0] if s > 0 else -bounds[v][1] for v, s in unknown if v != skip)
    return sum(bounds[v][1] if s > 0 else -bounds[v][0] for v, s in unknown if v != skip)


def _next_to_hide(values: Mapping[K, int], group: Group[K], hidden: set[K]) -> K | None:
    shown = sorted((values[k], i) for i, k in enumerate(group.parts) if k not in hidden and values[k] > 0)
    if shown:
        return group.parts[shown[0][1]]
    return None if group.total in hidden or values[group.total] == 0 else group.total
