"""Secondary suppression of the statistics: no hidden count can be worked out from the shown ones.

The attacker subtracts: for each group (a total and its parts) every assignment of its hidden cells
that adds up (a "<5" is 1 to 4, an "x" at least 5, since a shown count is 0 or at least 5) is a
possibility, and a hidden cell with one possible value is given away. Solving several groups' sums
together can still pin a cell in some tables; docs/console.md says so."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from idsvc.core.db import utcnow
from idsvc.registry.suppression import PRIMARY, SECONDARY, SMALL, Cell, Group, protect
from tests.world import World


def _given_away(shown: Mapping[Any, Cell], group: Group[Any], cap: int) -> set[Any]:
    """Hidden cells of the group that subtraction pins to one value: every assignment of its hidden cells
    that adds up (a "<5" 1 to 4, an "x" 5 to ``cap``) is tried, and a cell with a single possible value is given away."""
    cells = [group.total, *group.parts]
    hidden = [k for k in cells if not isinstance(shown[k], int)]
    known = sum(shown[k] for k in group.parts if isinstance(shown[k], int)) - (shown[group.total] if isinstance(shown[group.total], int) else 0)
    domains = [range(1, SMALL) if shown[k] == PRIMARY else range(SMALL, cap + 1) for k in hidden]
    signs = [-1 if k == group.total else 1 for k in hidden]
    seen: list[set[int]] = [set() for _ in hidden]
    for values in itertools.product(*domains):
        if known + sum(sign * v for sign, v in zip(signs, values, strict=True)) == 0:
            for i, v in enumerate(values):
                seen[i].add(v)
    return {k for k, s in zip(hidden, seen, strict=True) if len(s) == 1}


def _table(cells: list[list[int]]) -> tuple[dict[Any, int], list[Group[Any]]]:
    """Rows and columns with their totals and a grand total: buildings by provinces, say."""
    rows, cols = range(len(cells)), range(len(cells[0]))
    values: dict[Any, int] = {(r, c): cells[r][c] for r in rows for c in cols}
    values |= {(r, "T"): sum(cells[r]) for r in rows} | {("T", c): sum(cells[r][c] for r in rows) for c in cols}
    values[("T", "T")] = sum(map(sum, cells))
    groups = [Group((r, "T"), [(r, c) for c in cols]) for r in rows] + [Group(("T", c), [(r, c) for r in rows]) for c in cols]
    groups += [Group(("T", "T"), [(r, "T") for r in rows]), Group(("T", "T"), [("T", c) for c in cols])]
    return values, groups


small_tables = st.integers(1, 3).flatmap(
    lambda rows: st.integers(1, 3).flatmap(
        lambda cols: st.lists(st.lists(st.sampled_from([0, 0, 1, 2, 3, 4, 5, 6, 8, 11]), min_size=cols, max_size=cols), min_size=rows, max_size=rows)
    )
)


@settings(max_examples=200, deadline=None)
@given(small_tables)
def test_no_hidden_cell_of_a_table_can_be_worked_out(cells: list[list[int]]) -> None:
    values, groups = _table(cells)
    shown = protect(values, groups)
    assert all(shown[k] == PRIMARY for k, v in values.items() if 0 < v < SMALL)  # primary: every small count
    assert all(shown[k] in (v, SECONDARY) for k, v in values.items() if v == 0 or v >= SMALL)
    cap = values[("T", "T")] + SMALL
    leaks = set()
    for group in groups:
        if any(isinstance(shown[k], int) and shown[k] > 0 for k in (group.total, *group.parts)):  # else the markers alone speak (docs/console.md)
            leaks |= _given_away(shown, group, cap)
    assert leaks == set(), (cells, shown)


def test_a_single_small_cell_takes_a_neighbour_with_it() -> None:
    """The brief's case: a hidden cell next to shown ones and a shown total."""
    values = {"site": 16, "b1": 1, "b2": 5, "b3": 10}
    shown = protect(values, [Group("site", ["b1", "b2", "b3"])])
    assert shown == {"site": 16, "b1": PRIMARY, "b2": SECONDARY, "b3": SECONDARY}  # b1 + b2 = 6 would pin both: b3 goes too
    assert protect({"t": 9, "a": 1, "b": 8}, [Group("t", ["a", "b"])]) == {"t": 9, "a": PRIMARY, "b": SECONDARY}
    assert protect({"t": 0, "a": 0}, [Group("t", ["a"])]) == {"t": 0, "a": 0}


def test_the_statistics_feed_hides_a_building_that_would_give_away_another(client: TestClient, world: World) -> None:
    """Building 1 holds world's two tenants ("<5"); a second building with six makes the site eight:
    without secondary suppression 8 - 6 gives building 1's 2 away."""
    admin, site = world.auth("admin_a"), world.ids["site_a"]
    building = client.post("/v1/buildings", headers=admin, json={"site_id": site, "code": "b2", "name": "Building 2"}).json()["id"]
    unit = client.post("/v1/units", headers=admin, json={"building_id": building, "label": "201"}).json()["id"]
    now = utcnow()
    window = {"valid_from": (now - timedelta(days=1)).isoformat(), "valid_until": (now + timedelta(days=90)).isoformat()}
    for n in range(6):
        person = client.post("/v1/people", headers=admin, json={"site_id": site, "display_name": f"B2 tenant {n}", "kind": "tenant"}).json()["id"]
        assert client.post(f"/v1/units/{unit}/tenants", headers=admin, json={"person_id": person, **window}).status_code == 201
    rows = client.get("/v1/statistics", headers=admin, params={"site_id": site}).json()["items"]
    by_building = {r["building_id"]: r for r in rows}
    site_row, first, second = by_building[None], by_building[world.ids["building_a"]], by_building[building]
    for figure in ("residents", "arrivals"):
        assert (site_row[figure], first[figure], second[figure]) == (8, PRIMARY, SECONDARY), figure
    per_day = [d["arrivals"] for d in site_row["per_day"]]
    assert sorted(map(str, per_day)) == ["0"] * 6 + ["8"]  # all eight on one day: nothing to hide
