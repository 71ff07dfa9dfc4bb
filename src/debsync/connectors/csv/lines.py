"""Physical lines of an export, for the rows the csv module cannot take as it reads them."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

_QUOTED = re.compile(r'"(?:[^"]|"")*"')


def remembering(handle: io.TextIOBase, last: list[str]) -> Iterator[str]:
    """The handle's lines, the current one kept in ``last`` for a row the reader refuses."""
    for text in handle:
        last[0] = text
        yield text


def split_line(line: str, delimiter: str) -> list[str] | None:
    """The cells of one physical line the csv module refused (a cell beyond its field size
    limit), or ``None`` when a quote stays open at its end: then the row goes on below, and
    where it ends cannot be told."""
    cells, at, end = [], 0, len(line)
    while True:
        if line.startswith('"', at):
            quoted = _QUOTED.match(line, at)
            if quoted is None:
                return None
            cell, at = quoted[0][1:-1].replace('""', '"'), quoted.end()
            if at < end and not line.startswith(delimiter, at):
                return None
        else:
            stop = line.find(delimiter, at)
            stop = end if stop < 0 else stop
            cell, at = line[at:stop], stop
        cells.append(cell)
        if at >= end:
            return cells
        at += len(delimiter)
