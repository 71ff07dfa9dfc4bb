"""Invoices in their stored form (debsync.invoice_rows) are the validator's invoices: a row
``is_plain`` accepts builds the record ``Invoice.model_validate`` builds, and the csv
connector's plain-row path (``FileReader.plain_row``) stores, logs and rejects exactly what
its full path does, on exports with many kinds of bad and odd cells."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from debsync.connectors.csv.reader import FileReader
from debsync.invoice_rows import InvoiceRow, Invoices, is_plain, record, row_of, rows_of
from debsync.model import Invoice
from debsync.store import Store, open_store
from debsync.store.schema import events, invoices, sync_rejects

from csv_helpers import read, sync, write

TEXTS = ["F1", "2026-0001", " F1", "F1 ", "", "F\x001", "Fé", "x" * 255, "x" * 256, "F\u202e1"]
URLS = [None, "https://pay.example/1", "http://pay.example/1", "javascript:alert(1)", ""]
STEPS = [(None, None), ("reminder", date(2026, 10, 5)), ("aanmaning", date(2025, 1, 1))]
STEPS += [("sommatie", date(2026, 10, 5)), ("reminder", None), (None, date(2026, 10, 5))]


@st.composite
def rows(draw: st.DrawFn) -> InvoiceRow:
    issued = draw(st.dates(date(2020, 1, 1), date(2027, 12, 31)))
    step, step_on = draw(st.sampled_from(STEPS))
    total = draw(st.sampled_from([0, 1, 12345, -500, 10**11 - 1, 10**11, 10**14]))
    return InvoiceRow(
        draw(st.sampled_from(TEXTS)),
        draw(st.sampled_from(TEXTS)),
        draw(st.sampled_from(TEXTS)),
        issued,
        issued + timedelta(days=draw(st.integers(-3, 60))),
        draw(st.sampled_from(["EUR", "JPY", "KWD", "XXX", "eur", "EURO"])),
        total,
        draw(st.sampled_from([0, total, total // 2, -total, total + 1])),
        draw(st.sampled_from([None, *TEXTS])),
        draw(st.sampled_from(URLS)),
        draw(st.booleans()),
        draw(st.booleans()),
        draw(st.booleans()),
        draw(st.sampled_from([False, True, 1])),  # type: ignore[arg-type]
        step,  # type: ignore[arg-type]
        step_on,
    )


def mapping(row: InvoiceRow) -> dict[str, Any]:
    exponent = {"JPY": 0, "KWD": 3}.get(row.currency, 2)
    data: dict[str, Any] = {
        key: value
        for key, value in row._asdict().items()
        if key not in ("currency", "total_minor", "open_minor")
    }
    for key, minor in (("total", row.total_minor), ("open_amount", row.open_minor)):
        data[key] = {"amount": Decimal(minor).scaleb(-exponent), "currency": row.currency}
    return data


@settings(max_examples=3000, deadline=None)
@given(rows())
def test_a_plain_row_is_the_validated_invoice(row: InvoiceRow) -> None:
    data = mapping(row)
    try:
        validated = Invoice.model_validate(data)
    except Exception:
        assert not is_plain(row)
        return
    if not is_plain(row):
        return  # the validator's way: nothing to compare
    built = record(row, frozenset(data))
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set
    assert repr(built) == repr(validated)
    assert built.model_dump_json() == validated.model_dump_json()
    assert hash(built) == hash(validated)
    assert row_of(built) == row


def test_invoices_build_each_record_once_and_read_like_a_list() -> None:
    row = InvoiceRow("F1", "F1", "D1", date(2026, 10, 1), date(2026, 10, 31), "EUR", 100, 50)
    found = Invoices()
    found.add(row, None, frozenset({"external_id"}))
    assert len(found) == 1 and found[0] is found[0] and found[-1:] == [found[0]]
    assert found == [found[0]] and rows_of(found) == [row] and rows_of(list(found)) == [row]
    assert found[0].open_amount.amount == Decimal("0.50")


# -- the csv connector: the plain-row path against the full one ---------------------------

AMOUNTS = ["1.234,56", "12,00", "-12,00", "-0,00", "0,00", "12", "12,5", "€ 12,00", "(12,00)"]
AMOUNTS += ["1.000.000.000,00", "999.999.999,99", "12,00-", "1,234.56", "veel", ""]
DATES = ["01-10-2026", "2026-10-01", "1-10-2026", "31-02-2026", "", "01-10-2026 12:00"]
CURRENCIES = ["", "EUR", "€", "USD", "JPY", "KWD", "XYZ", "eur"]
REFERENCES = ["", "RF18 5390 0754 7034", "RF185390", "x" * 300, "K\u00e9nmerk"]
LINKS = ["", "https://pay.example.nl/x", "javascript:alert(1)", "http://x.nl"]
METHODS = ["", "Incasso", "Gestorneerd", "Overboeking"]
LEVELS = ["", "", "", "herinnering", "aanmaning", "onzin"]
NUMBERS = ["F{n}", "F{n}", "F{n}", " F{n} ", "F{n}\u00e9", "F{n}" + "x" * 260, "Totaal"]
HEADER = [
    "Relatiecode",
    "Naam",
    "E-mail",
    "Factuurnummer",
    "Factuurdatum",
    "Vervaldatum",
    "Bedrag",
    "Openstaand",
    "Valuta",
    "Betalingskenmerk",
    "Betaallink",
    "Betaalwijze",
    "Aanmaning",
    "Datum aanmaning",
]


def export(seed: int, size: int) -> list[list[str]]:
    rng = random.Random(seed)
    lines = [HEADER]
    for n in range(size):

        def pick(pool: list[str]) -> str:
            return pool[0] if rng.random() < 0.7 else rng.choice(pool)

        level = pick(LEVELS)
        lines.append(
            [
                f"D{n % 7}",
                f"Klant {n % 7}",
                f"d{n % 7}@example.nl",
                pick(NUMBERS).format(n=n % (size - 3)),  # a few repeats and conflicts
                pick(DATES),
                pick(DATES),
                pick(AMOUNTS),
                pick(AMOUNTS),
                pick(CURRENCIES),
                pick(REFERENCES),
                pick(LINKS),
                pick(METHODS),
                level,
                pick(DATES) if level or rng.random() < 0.1 else "",
            ]
        )
    return lines


def tables(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        return {
            "invoices": sorted(
                tuple(row)
                for row in conn.execute(
                    sa.select(*(c for c in invoices.c if c.key not in ("created_at", "updated_at")))
                )
            ),
            "events": [
                (row.kind, row.debtor_id, row.invoice_id, row.data)
                for row in conn.execute(sa.select(events).order_by(events.c.id))
            ],
            "rejects": [
                (row.kind, row.ref, row.reason, row.invoice_id, row.dropped)
                for row in conn.execute(sa.select(sync_rejects).order_by(sync_rejects.c.id))
            ],
        }


@pytest.mark.parametrize("seed", range(6))
def test_the_plain_row_path_stores_what_the_full_path_stores(
    tmp_path: Path, clock: Any, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    lines = export(seed, 300)
    found = {}
    taken = []
    plain_row = FileReader.plain_row

    def counted(reader: FileReader, *args: Any) -> InvoiceRow | None:
        row = plain_row(reader, *args)
        taken.append(row is not None and is_plain(row))
        return row

    for way in ("plain", "full"):
        monkeypatch.setattr(FileReader, "plain_row", counted if way == "plain" else lambda *a: None)
        (tmp_path / way).mkdir()
        store = open_store(f"sqlite:///{tmp_path / way / 'debsync.db'}")
        path = write(tmp_path / way / "export.csv", lines)
        result = sync(store, clock, path)
        assert result.ok, result.error
        found[way] = tables(store), read(path), result.counts
    (plain_tables, plain_read, plain_counts), (full_tables, full_read, full_counts) = (
        found["plain"],
        found["full"],
    )
    assert plain_tables == full_tables
    assert plain_counts == full_counts
    assert plain_read.rejects == full_read.rejects
    assert plain_read.invoices == full_read.invoices
    for number, invoice in plain_read.invoices.items():
        assert invoice.model_fields_set == full_read.invoices[number].model_fields_set
        assert repr(invoice) == repr(full_read.invoices[number])
    assert 0.05 < sum(taken) / len(taken) < 0.95  # both ways were taken
