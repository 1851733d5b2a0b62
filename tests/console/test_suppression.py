"""Secondary suppression of the statistics: no hidden count can be worked out from the shown ones.

The attacker is exhaustive: every assignment of the hidden cells that agrees with every group's sum
(a "<5" is 1 to 4, an "x" at least 5, since a shown count is 0 or at least 5) is a possibility, and a
hidden cell with one possible value is given away."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from idsvc.core.db import utcnow
from idsvc.registry.suppression import PRIMARY, SECONDARY, SMALL, Cell, Group, narrowed, protect
from tests.world import World


def _possible_values(shown: Mapping[Any, Cell], groups: Sequence[Group[Any]], cap: int) -> dict[Any, set[int]]:
    """Every value each hidden cell takes in some assignment consistent with the shown cells and the sums."""
    hidden = [k for k, v in shown.items() if not isinstance(v, int)]
    known = {k: v for k, v in shown.items() if isinstance(v, int)}
    # Interval reasoning only ever removes impossible values; the search below then tries every one left.
    bounds = narrowed(known, groups, set(hidden), {k for k in hidden if shown[k] == PRIMARY})
    domains = {k: range(int(bounds[k][0]), int(min(bounds[k][1], cap)) + 1) for k in hidden}
    position = {k: i for i, k in enumerate(hidden)}
    # Check each group as soon as its last hidden cell is assigned.
    due: dict[int, list[Group[Any]]] = {}
    for group in groups:
        cells = [group.total, *group.parts]
        last = max((position[k] for k in cells if k in position), default=-1)
        due.setdefault(last, []).append(group)
    seen: dict[Any, set[int]] = {k: set() for k in hidden}
    values: dict[Any, int] = {k: v for k, v in shown.items() if isinstance(v, int)}

    def consistent(group: Group[Any]) -> bool:
        return sum(values[k] for k in group.parts) == values[group.total]

    def search(i: int) -> bool:  # True: every hidden cell has two possible values already, stop
        if i == len(hidden):
            for k in hidden:
                seen[k].add(values[k])
            return all(len(s) > 1 for s in seen.values())
        for value in domains[hidden[i]]:
            values[hidden[i]] = value
            if all(consistent(g) for g in due.get(i, [])) and search(i + 1):
                return True
        del values[hidden[i]]
        return False

    if all(consistent(g) for g in due.get(-1, [])):
        search(0)
    return seen


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


@settings(max_examples=80, deadline=None)
@given(small_tables)
def test_no_hidden_cell_of_a_table_can_be_worked_out(cells: list[list[int]]) -> None:
    values, groups = _table(cells)
    shown = protect(values, groups)
    assert all(shown[k] == PRIMARY for k, v in values.items() if 0 < v < SMALL)  # primary: every small count
    assert all(shown[k] in (v, SECONDARY) for k, v in values.items() if v == 0 or v >= SMALL)
    cap = values[("T", "T")] + SMALL
    pinned = {k for k, s in _possible_values(shown, groups, cap).items() if len(s) < 2}
    # Four "<5" cells under a "<5" total are 1 each whatever is shown: the markers alone say so
    # (docs/console.md). Only what the shown numbers give away is a leak.
    zeros = {k: 0 for k, v in shown.items() if v == 0}
    markers = narrowed(zeros, groups, set(shown) - set(zeros), {k for k, v in shown.items() if v == PRIMARY})
    inherent = {k for k, (low, high) in markers.items() if low == high}
    assert pinned - inherent == set(), (cells, shown)


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
