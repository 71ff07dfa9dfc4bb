"""One bad cell costs its row, never the sync: each case of issue 10 item 3 through the real
csv connector, engine and store (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from debsync.connectors.base import Page, SyncResult
from debsync.model import Invoice
from debsync.store import Store
from debsync.store.schema import invoices, sync_rejects
from debsync.sync import SyncEngine

from csv_helpers import sync, write
from fakes import INSTANCE, FakeConnector, debtor, invoice

HEADER = ["Relatiecode", "Naam", "Factuurnummer", "Factuurdatum", "Vervaldatum", "Openstaand"]
GOOD = [["1", "Klant B.V.", "F1", "01-10-2026", "31-10-2026", "10,00"]]
DECIMALS = "; ".join(  # the total is the open amount when the file has no total
    f"{field}: Value error, EUR amounts have at most 2 decimals"
    for field in ("total", "open_amount")
)


def stored(store: Store) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        return {r.external_id: dict(r._mapping) for r in conn.execute(sa.select(invoices))}


def stored_rejects(store: Store, run_id: int) -> list[tuple[str, str, str | None, str]]:
    with store.engine.connect() as conn:
        query = sa.select(sync_rejects).where(sync_rejects.c.run_id == run_id)
        rows = conn.execute(query.order_by(sync_rejects.c.id))
        return [(r.kind, r.ref, r.invoice_id, r.reason) for r in rows]


def sync_rows(
    store: Store, clock: Any, tmp_path: Path, rows: list[list[str]], header: list[str] = HEADER
) -> SyncResult:
    result = sync(store, clock, write(tmp_path / "x.csv", [header, *GOOD, *rows]))
    assert result.ok, result.error
    assert "F1" in stored(store)
    return result


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (["12,00)"], "column 'Openstaand': '12,00)' is not an amount"),
        (["(12,00)-"], "column 'Openstaand': '(12,00)-' is not an amount"),
        (["0,001"], DECIMALS),
        (["0,9999999999999999"], DECIMALS),
    ],
)
def test_a_bad_amount_is_a_located_reject(
    store: Store, clock: Any, tmp_path: Path, cells: list[str], reason: str
) -> None:
    row = ["1", "Klant B.V.", "F2", "01-10-2026", "31-10-2026", *cells]
    result = sync_rows(store, clock, tmp_path, [row])

    assert [(r.ref, r.invoice_id, r.reason) for r in result.rejects] == [("x.csv:3", "F2", reason)]
    assert "F2" not in stored(store)


def test_a_date_at_the_end_of_the_calendar_without_a_due_date(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    header = [c for c in HEADER if c != "Vervaldatum"]
    rows = [["1", "Klant B.V.", "F2", "31-12-9999", "10,00"]]
    good = [["1", "Klant B.V.", "F1", "01-10-2026", "10,00"]]
    result = sync(store, clock, write(tmp_path / "x.csv", [header, *good, *rows]))

    assert result.ok, result.error
    assert [(r.ref, r.reason) for r in result.rejects] == [
        ("x.csv:3", "column 'Factuurdatum': no due date lies a term after it")
    ]
    assert list(stored(store)) == ["F1"]


def test_a_nul_byte_in_text_cells_is_removed_with_a_reason(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    rows = [["2", "Jan\x00sen\u202e", "F2", "01-10-2026", "31-10-2026", "10,00"]]
    result = sync_rows(store, clock, tmp_path, rows)

    assert [(r.kind, r.ref, r.dropped, r.reason) for r in result.rejects] == [
        ("debtor", "x.csv:3", True, "name: control or bidi-control characters removed")
    ]
    assert stored(store)["F2"]["debtor_id"] == "2"
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM debtors WHERE external_id = '2'")).scalar()


def test_an_invoice_number_beyond_the_column_is_rejected_and_the_reject_stores(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    number = "F" * 300
    rows = [["1", "Klant B.V.", number, "01-10-2026", "31-10-2026", "10,00"]]
    result = sync_rows(store, clock, tmp_path, rows)

    assert stored_rejects(store, result.run_id) == [
        ("row", "x.csv:3", None, "column 'Factuurnummer' is longer than 255 characters")
    ]


def test_a_megabyte_cell_is_a_reject_and_its_invoice_stays_open(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    good = ["1", "Klant B.V.", "F2", "01-10-2026", "31-10-2026", "10,00"]
    sync_rows(store, clock, tmp_path, [good])
    big = ["1", "x" * 1_000_000, "F2", "01-10-2026", "31-10-2026", "10,00"]
    after = ["1", "Klant B.V.", "F3", "01-10-2026", "31-10-2026", "10,00"]

    result = sync_rows(store, clock, tmp_path, [big, after])

    assert [(r.ref, r.invoice_id) for r in result.rejects] == [("x.csv:3", "F2")]
    assert "field larger than field limit" in result.rejects[0].reason
    assert {k: v["state"] for k, v in stored(store).items()} == {
        "F1": "open",
        "F2": "open",
        "F3": "open",
    }


def test_an_invoice_numbered_like_a_total_with_a_bad_cell_stays_open(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    row = ["1", "Klant B.V.", "Total-7", "01-10-2026", "31-10-2026", "10,00"]
    sync_rows(store, clock, tmp_path, [row])
    row[-1] = "12,00)"

    result = sync_rows(store, clock, tmp_path, [row])

    assert [(r.ref, r.invoice_id) for r in result.rejects] == [("x.csv:3", "Total-7")]
    assert stored(store)["Total-7"]["state"] == "open"


def test_a_javascript_payment_link_is_dropped_with_a_reason(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    header = [*HEADER, "Betaallink"]
    rows = [["1", "Klant B.V.", "F2", "01-10-2026", "31-10-2026", "10,00", "javascript:alert(1)"]]
    rows += [["1", "Klant B.V.", "F3", "01-10-2026", "31-10-2026", "10,00", "https://pay.nl/3"]]
    result = sync_rows(store, clock, tmp_path, rows, header)

    assert [(r.ref, r.invoice_id, r.dropped, r.reason) for r in result.rejects] == [
        (
            "x.csv:3",
            "F2",
            True,
            "payment_url dropped: Value error, only https: links are used as payment links",
        )
    ]
    assert stored(store)["F2"]["payment_url"] is None
    assert stored(store)["F3"]["payment_url"] == "https://pay.nl/3"


def test_a_record_the_store_refuses_is_a_reject_and_the_rest_of_the_page_stores(
    store: Store, clock: Any
) -> None:
    """A connector that bypasses validation (``model_construct``) hands over an amount beyond
    the store's 64-bit minor units: that invoice is a reject, the page's others are stored."""
    fine = invoice("F1")
    huge = fine.open_amount.model_construct(amount=fine.open_amount.amount * 10**20)
    broken = Invoice.model_construct(**{**dict(fine), "external_id": "F2", "open_amount": huge})
    page = Page(debtors=[debtor()], invoices=[fine, broken, invoice("F3")], snapshot_complete=True)

    result = asyncio.run(SyncEngine(store, clock=clock).run(INSTANCE, FakeConnector([page])))

    assert result.ok, result.error
    assert sorted(stored(store)) == ["F1", "F3"]
    assert [(r.kind, r.ref, r.invoice_id) for r in result.rejects] == [("invoice", "F2", "F2")]
    assert result.rejects[0].reason.startswith("the store refused the record: ")
    assert stored_rejects(store, result.run_id)[0][:3] == ("invoice", "F2", "F2")
    assert result.counts.invoices_new == 2 and result.counts.rejects == 1
