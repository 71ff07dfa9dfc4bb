"""Hostile exports through the real csv connector, sync engine and store: seeded generation of
rows with one bad cell among good ones, synced after a clean export of the same invoices.

No sync may abort; every good row is stored as it reads; every bad row is a reject at its
line, and its invoice, when the row still shows its number, stays open as it was."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from debsync.store import Store
from debsync.store.schema import invoices

from csv_helpers import sync, write

HEADER = [
    "Relatiecode",
    "Naam",
    "E-mail",
    "Factuurnummer",
    "Factuurdatum",
    "Vervaldatum",
    "Openstaand",
    "Betaallink",
]

BAD_AMOUNTS = [
    "12,00)",
    "(12,00)-",
    "0,001",
    "0,9999999999999999",
    "1.000.000.000.000,00",
    "veel",
    "--1,00",
    "1,2,3",
    "NaN",
    "Infinity",
    "1e5",
    "12,00\x00",
    "€",
    "()",
]
BAD_DATES = ["31-02-2026", "00-00-0000", "99-99-9999", "31-12-99999", "2026-13-01", "1-1-1\x00"]
HOSTILE_TEXT = [
    "Jan\x00sen",
    "Jan\r\nBcc: x@example.org",
    "\u202eKlant\u202c B.V.",
    "Klant\u2066 B.V.\u2069",
    "Klant\x1b[31m",
    "\u200fKlant",
    "Klant " * 150,
    "",
]
HOSTILE_EMAILS = ["jan@example.nl", "geen-mail", "a@b@c", "jan@example.nl\x00", "\u202ejan@x.nl"]
_BREAK = re.compile(r"\r\n|\r|\n")
HOSTILE_LINKS = ["", "https://pay.example.nl/x", "javascript:alert(1)", "http://x.nl", "data:,x"]


@dataclass
class Row:
    cells: list[str]
    number: str
    open_amount: Decimal | None  # None: the row is bad
    keeps_number: bool = True


def good_amount(rng: random.Random) -> tuple[str, Decimal]:
    cents = rng.randint(-(10**8), 10**9)
    value = Decimal(cents).scaleb(-2)
    whole, frac = divmod(abs(cents), 100)
    text = f"{whole:,}".replace(",", ".") + f",{frac:02d}"
    style = rng.randrange(4)
    if cents < 0:
        text = f"-{text}" if style < 2 else f"{text}-" if style == 2 else f"({text})"
    elif style == 3:
        text = f"€ {text}"
    return text, value


def make_row(rng: random.Random, n: int, *, hostile: bool) -> Row:
    number = f"F{n:05d}"
    amount_text, amount = good_amount(rng)
    cells = [
        f"D{n}",
        rng.choice(HOSTILE_TEXT) if hostile else f"Klant {n} B.V.",
        rng.choice(HOSTILE_EMAILS) if hostile else f"d{n}@example.nl",
        number,
        "01-10-2026",
        "31-10-2026",
        amount_text,
        rng.choice(HOSTILE_LINKS) if hostile else "",
    ]
    row = Row(cells, number, amount)
    if not hostile or rng.random() < 0.4:  # noise in text cells only: still a good row
        return row
    row.open_amount = None
    kind = rng.randrange(6)
    if kind == 0:
        cells[6] = rng.choice(BAD_AMOUNTS)
    elif kind == 1:
        cells[rng.choice((4, 5))] = rng.choice(BAD_DATES)
    elif kind == 2:  # no due date, and none can be derived
        cells[4], cells[5] = "31-12-9999", ""
    elif kind == 3:
        cells[4], cells[5] = "", "01-01-0001"
    elif kind == 4:
        cells[3] = number + "X" * rng.choice((255, 1000))
        row.keeps_number = False
    else:
        cells[1] = "x" * (1_000_000 if rng.random() < 0.1 else 140_000)  # beyond the field limit
    return row


def stored(store: Store) -> dict[str, tuple[str, int]]:
    with store.engine.connect() as conn:
        query = sa.select(invoices.c.external_id, invoices.c.state, invoices.c.open_minor)
        return {ext: (state, minor) for ext, state, minor in conn.execute(query)}


def run_fuzz(
    store: Store, clock: Any, tmp_path: Path, seed: int, rows: int, first: int = 0
) -> None:
    """Sync a clean export, then its hostile version (``rows`` rows numbered from ``first``),
    and check every row's fate."""
    rng = random.Random(seed)
    numbers = range(first, first + rows)
    hostile = [make_row(rng, n, hostile=rng.random() < 0.5) for n in numbers]
    clean = [Row(list(r.cells), r.number, r.open_amount) for r in hostile]
    for original, row in zip(clean, hostile, strict=True):
        if row.open_amount is None:  # the clean export has a good version of the bad row
            original.cells = make_row(random.Random(seed), 0, hostile=False).cells
            original.cells[0], original.cells[3] = row.cells[0], row.number
            original.open_amount = Decimal("0.00")
            original.cells[6] = "0,00"
    path = tmp_path / "fuzz.csv"

    first = sync(store, clock, write(path, [HEADER, *(r.cells for r in clean)]))
    assert first.ok, first.error
    assert not [r for r in first.rejects if not r.dropped], "the clean export has no bad rows"

    result = sync(store, clock, write(path, [HEADER, *(r.cells for r in hostile)]))

    assert result.ok, result.error
    after = stored(store)
    rejected = {r.ref: r for r in result.rejects if not r.dropped}
    line = 2
    for row in hostile:
        ref = f"fuzz.csv:{line}"  # a quoted line break makes a row span lines
        line += 1 + sum(len(_BREAK.findall(cell)) for cell in row.cells)
        if row.open_amount is not None:
            assert ref not in rejected, (ref, rejected.get(ref))
            assert after[row.number] == ("open", int(row.open_amount.scaleb(2))), ref
            continue
        assert ref in rejected, f"{ref} is bad ({row.cells!r:.200}) but not rejected"
        state = after[row.number]
        if row.keeps_number:
            assert rejected[ref].invoice_id == row.number
            assert state == ("open", 0), f"{ref}: a bad row's invoice must stay as it was"
        else:
            assert state[0] == "closed"  # its number changed: the old one left the file
    assert len(rejected) == sum(r.open_amount is None for r in hostile)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hostile_rows_cost_only_themselves(
    store: Store, clock: Any, tmp_path: Path, seed: int
) -> None:
    run_fuzz(store, clock, tmp_path, seed, rows=120)


def test_hundreds_of_small_hostile_files_each_cost_only_their_bad_rows(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    for seed in range(300):
        run_fuzz(store, clock, tmp_path, seed, rows=4, first=seed * 4)


@pytest.mark.slow
def test_hostile_rows_at_scale(store: Store, clock: Any, tmp_path: Path) -> None:
    run_fuzz(store, clock, tmp_path, 10, rows=3000)
