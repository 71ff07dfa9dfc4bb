"""Geometry of the dashboard's server-rendered SVG charts (pure): bar lengths and line
points in the SVG's own units, so the templates only draw. No script, no inline style."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

BAR_WIDTH = 300
"""The longest bar, in SVG units; labels and values sit left and right of it."""
ROW = 28
LINE_WIDTH, LINE_HEIGHT = 480, 160


@dataclass(frozen=True)
class Bar:
    y: int
    length: float


def bars(values: list[Decimal]) -> list[Bar]:
    """One horizontal bar per value, the largest :data:`BAR_WIDTH` long; negative values
    (credit notes outweighing invoices) draw no bar."""
    top = max((v for v in values if v > 0), default=Decimal(0))
    return [
        Bar(i * ROW, float(v / top * BAR_WIDTH) if top and v > 0 else 0.0)
        for i, v in enumerate(values)
    ]


@dataclass(frozen=True)
class Point:
    x: float
    y: float


def line(values: list[Decimal | None]) -> list[Point | None]:
    """Points of a line chart from left to right, the largest value at the top; a missing
    value leaves a gap."""
    known = [v for v in values if v is not None]
    top: Decimal = max([*known, Decimal(1)])
    step = LINE_WIDTH / max(len(values) - 1, 1)
    return [
        None
        if v is None
        else Point(
            round(i * step, 1),
            round(LINE_HEIGHT - float(max(v, Decimal(0)) / top) * LINE_HEIGHT, 1),
        )
        for i, v in enumerate(values)
    ]
