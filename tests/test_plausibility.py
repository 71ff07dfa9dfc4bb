"""Implausible invoices are rejected where they come in, with the place they came from, and
cost nothing else: an open amount beyond the total, a due date before the issue date, an
amount of a billion or more. An old invoice is no reject: it is prescription's to decide."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import respx
from pydantic import ValidationError

from debsync.connectors.base import RecordBuilder
from debsync.model import Invoice
from debsync.store import Store
from debsync.testing.connectors import fetch_all
from test_moneybird import contact, make_connector
from test_moneybird import invoice as moneybird_invoice

from csv_helpers import export_header, sync, write
from fake_moneybird import FakeMoneybird


def data(total: str, open_amount: str, **changes: Any) -> dict[str, Any]:
    return {
        "external_id": "F1",
        "number": "F1",
        "debtor_id": "D1",
        "issue_date": date(2026, 9, 1),
        "due_date": date(2026, 10, 1),
        "total": {"amount": total},
        "open_amount": {"amount": open_amount},
        **changes,
    }


@pytest.mark.parametrize(
    ("total", "open_amount", "problem"),
    [
        ("100.00", "100.00", None),
        ("100.00", "40.00", None),
        ("100.00", "0.00", None),
        ("100.00", "-100.00", None),  # paid twice: an overpayment of the whole total
        ("-121.00", "-121.00", None),  # an open credit note
        ("-121.00", "-21.00", None),
        ("999999999.99", "999999999.99", None),
        ("100.00", "5000.00", "open amount 5000.00 exceeds the invoice total 100.00"),
        ("100.00", "100.01", "open amount 100.01 exceeds the invoice total 100.00"),
        ("100.00", "-500.00", "open amount -500.00 exceeds the invoice total 100.00"),
        ("-121.00", "-500.00", "open amount -500.00 exceeds the credit note's total -121.00"),
        ("0.00", "10.00", "open amount 10.00 exceeds the invoice total 0.00"),
        ("1000000000.00", "5.00", "the amount is implausibly large"),
        ("999999999999.00", "999999999999.00", "the amount is implausibly large"),
        ("100.00", "-1000000000", "the amount is implausibly large"),
    ],
)
def test_amounts_must_be_plausible(total: str, open_amount: str, problem: str | None) -> None:
    if problem is None:
        Invoice.model_validate(data(total, open_amount))
        return
    with pytest.raises(ValidationError, match=problem):
        Invoice.model_validate(data(total, open_amount))


def test_a_due_date_before_the_issue_date_is_refused_and_an_old_invoice_is_not() -> None:
    with pytest.raises(ValidationError, match="due date 2026-08-31 is before issue date"):
        Invoice.model_validate(data("10.00", "10.00", due_date=date(2026, 8, 31)))
    old = data("10.00", "10.00", issue_date=date(1926, 1, 4), due_date=date(1926, 2, 3))
    assert Invoice.model_validate(old).due_date.year == 1926  # prescription decides


def test_every_connector_gets_the_checks_as_a_located_reject() -> None:
    builder = RecordBuilder()
    assert builder.invoice(data("100.00", "5000.00"), ref="invoice 42") is None
    assert builder.invoice(data("100.00", "50.00", external_id="F2"), ref="invoice 43")
    page = builder.page(cursor=None)
    assert [i.external_id for i in page.invoices] == ["F2"]
    ((kind, ref, reason, invoice_id),) = [
        (r.kind, r.ref, r.reason, r.invoice_id) for r in page.rejects
    ]
    assert (kind, ref, invoice_id) == ("invoice", "invoice 42", "F1")
    assert "open amount 5000.00 exceeds the invoice total 100.00" in reason


HEADER = export_header("Soort", "Telefoon", "Adres", "Postcode", "Plaats", "KvK-nummer", "Taal")


def row(number: str, issued: str, due: str, total: str, open_amount: str) -> list[str]:
    """A row of HEADER: id, name, e-mail, number, dates, amounts, currency, reference."""
    debtor = ["10001", "Bouwbedrijf 't Gooi B.V.", "info@gooi.example.nl"]
    return [*debtor, number, issued, due, total, open_amount, "EUR", ""]


def test_csv_rejects_implausible_rows_with_file_and_line_and_syncs_the_rest(
    sqlite_store: Store, clock: Any, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "open.csv",
        [
            HEADER,
            row("2026-0001", "01-10-2026", "31-10-2026", "726,00", "726,00"),
            row("2026-0002", "01-10-2026", "31-10-2026", "100,00", "5.000,00"),
            row("2026-0003", "01-10-2026", "15-09-2026", "50,00", "50,00"),
            row(
                "2026-0004", "01-10-2026", "31-10-2026", "999.999.999.999,00", "999.999.999.999,00"
            ),
            row("2026-0005", "01-10-2026", "31-10-2026", "-121,00", "-121,00"),
            row("1926-0001", "04-01-1926", "03-02-1926", "48,40", "48,40"),
        ],
    )

    result = sync(sqlite_store, clock, path)

    assert result.ok
    assert result.counts.invoices_new == 3  # 2026-0001, the credit note, the old one
    found = {(r.ref, r.invoice_id): r.reason for r in result.rejects}
    assert set(found) == {
        ("open.csv:3", "2026-0002"),
        ("open.csv:4", "2026-0003"),
        ("open.csv:5", "2026-0004"),
    }
    assert (
        "open amount 5000.00 exceeds the invoice total 100.00" in found["open.csv:3", "2026-0002"]
    )
    assert "due date 2026-09-15 is before issue date 2026-10-01" in found["open.csv:4", "2026-0003"]
    assert "implausibly large" in found["open.csv:5", "2026-0004"]


def test_moneybird_rejects_an_unpaid_amount_beyond_the_total(
    respx_mock: respx.MockRouter,
) -> None:
    fake = FakeMoneybird()
    respx_mock.route(host="moneybird.test").mock(side_effect=fake)
    owner = contact(fake)
    bad = moneybird_invoice(fake, owner, "2026-0001", total="100.00", unpaid="5000.00")
    moneybird_invoice(fake, owner, "2026-0002", total="121.00")

    pages = fetch_all(make_connector(fake))

    assert [i.number for page in pages for i in page.invoices] == ["2026-0002"]
    (reject,) = [r for page in pages for r in page.rejects]
    assert (reject.kind, reject.ref) == ("invoice", f"sales invoice {bad['id']}")
    assert "open amount 5000.00 exceeds the invoice total 100.00" in reject.reason
