"""The site plan: where each door sits, as fractions (0-1) of the plan image, and a generated plan.

No site has uploaded a plan yet, so the console draws one: buildings on a grid (in id order), each
building's entrance on its lower edge, its units' doors in rows inside it, and doors of no building
(park gates) along the plan's lower edge. Positions are fractions, so an uploaded image can replace
the generated one without touching the doors' markers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

from idsvc.registry.models import Building, Door

WIDTH, HEIGHT = 1000, 700
_MARGIN, _GATE_BAND = 40, 90


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


def building_boxes(buildings: list[Building]) -> dict[int, Box]:
    columns = max(1, math.ceil(math.sqrt(len(buildings))))
    rows = max(1, math.ceil(len(buildings) / columns))
    cell_w = (WIDTH - 2 * _MARGIN) / columns
    cell_h = (HEIGHT - 2 * _MARGIN - _GATE_BAND) / rows
    boxes = {}
    for i, building in enumerate(sorted(buildings, key=lambda b: b.id)):
        row, column = divmod(i, columns)
        boxes[building.id] = Box(_MARGIN + column * cell_w + 10, _MARGIN + row * cell_h + 10, cell_w - 20, cell_h - 20)
    return boxes


def door_positions(buildings: list[Building], doors: list[Door]) -> dict[int, tuple[float, float]]:
    """Each door's (x, y) as fractions of the plan, y downwards like the image."""
    boxes = building_boxes(buildings)
    inside: dict[int, list[Door]] = {}
    gates: list[Door] = []
    positions: dict[int, tuple[float, float]] = {}
    for door in sorted(doors, key=lambda d: d.id):
        box = boxes.get(door.building_id) if door.building_id is not None else None
        if box is None:
            gates.append(door)
        elif door.unit_id is None:  # the building's entrance(s): on its lower edge
            positions[door.id] = ((box.x + box.w / 2) / WIDTH, (box.y + box.h) / HEIGHT)
        else:
            inside.setdefault(door.building_id, []).append(door)  # type: ignore[arg-type]
    for building_id, unit_doors in inside.items():
        box = boxes[building_id]
        per_row = max(1, math.ceil(math.sqrt(len(unit_doors) * box.w / max(box.h, 1))))
        rows = math.ceil(len(unit_doors) / per_row)
        for i, door in enumerate(unit_doors):
            row, column = divmod(i, per_row)
            x = box.x + box.w * (column + 0.5) / per_row
            y = box.y + (box.h - 20) * (row + 0.5) / rows
            positions[door.id] = (x / WIDTH, y / HEIGHT)
    for i, door in enumerate(gates):
        positions[door.id] = ((i + 1) / (len(gates) + 1), 1 - _GATE_BAND / 2 / HEIGHT)
    return {door_id: (round(x, 4), round(y, 4)) for door_id, (x, y) in positions.items()}


def plan_svg(site_name: str, buildings: list[Building]) -> str:
    boxes = building_boxes(buildings)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#eef2ee"/>',
        f'<rect x="0" y="{HEIGHT - _GATE_BAND}" width="{WIDTH}" height="{_GATE_BAND}" fill="#d9dfd9"/>',
        f'<text x="{_MARGIN}" y="26" font-family="sans-serif" font-size="18" fill="#335">{escape(site_name)}</text>',
    ]
    for building in buildings:
        box = boxes[building.id]
        parts.append(f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.w:.0f}" height="{box.h:.0f}" fill="#fff" stroke="#789" stroke-width="2"/>')
        parts.append(f'<text x="{box.x + 6:.0f}" y="{box.y + box.h - 6:.0f}" font-family="sans-serif" font-size="14" fill="#456">{escape(building.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
