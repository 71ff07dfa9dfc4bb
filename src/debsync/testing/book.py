"""The sample administration every conformance check syncs: invented Dutch debtors and invoices.

A connector's harness writes this book into its fake source (CSV rows, API JSON, …) in the
source's own format; the checks then compare what the connector yields with it, by invoice
number, since each source has its own ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from debsync.model import Address, Debtor, DebtorKind, Invoice, Language, Money


@dataclass(frozen=True)
class SampleBook:
    """Three debtors, seven invoices: overdue, not yet due, partly paid, a credit note, a
    foreign currency, and a debtor writing in English."""

    debtors: tuple[Debtor, ...]
    invoices: tuple[Invoice, ...]

    def invoice(self, number: str) -> Invoice:
        return next(i for i in self.invoices if i.number == number)

    @property
    def numbers(self) -> frozenset[str]:
        return frozenset(i.number for i in self.invoices)


def sample_book(today: date = date(2026, 11, 23)) -> SampleBook:
    """The book as of ``today``; the same ``today`` always gives the same book."""
    debtors = (
        Debtor(
            external_id="D1001",
            name="Bakkerij De Gouden Korrel B.V.",
            kind=DebtorKind.BUSINESS,
            emails=("administratie@goudenkorrel.example.nl",),
            phones=("+31612345678",),
            address=Address(lines=("Kerkstraat 8",), postcode="8011 PK", city="Zwolle"),
            kvk="87654321",
            vat="NL862745162B01",
        ),
        Debtor(
            external_id="D1002",
            name="J.P. de Vries",
            kind=DebtorKind.CONSUMER,
            emails=("jp.devries@example.nl",),
            phones=("+31687654321",),
            address=Address(lines=("Dorpsstraat 14 A",), postcode="1234 AB", city="Haarlem"),
        ),
        Debtor(
            external_id="D1003",
            name="Oak & Ivy Consulting B.V.",
            kind=DebtorKind.BUSINESS,
            language=Language.EN,
            emails=("accounts@oakivy.example.com",),
            phones=("+31201234567",),
            address=Address(lines=("Keizersgracht 100",), postcode="1015 AA", city="Amsterdam"),
            kvk="12345679",
        ),
    )

    def invoice(
        number: str,
        debtor: str,
        days_overdue: int,
        total: str,
        open_amount: str | None = None,
        currency: str = "EUR",
    ) -> Invoice:
        due = today - timedelta(days=days_overdue)
        return Invoice(
            external_id=number,
            number=number,
            debtor_id=debtor,
            issue_date=due - timedelta(days=30),
            due_date=due,
            total=Money.of(total, currency),
            open_amount=Money.of(open_amount or total, currency),
            payment_reference=number,
        )

    invoices = (
        invoice("2026-0101", "D1001", 45, "1210.00"),
        invoice("2026-0102", "D1001", 12, "605.00", "305.00"),  # partly paid
        invoice("2026-0103", "D1001", -10, "242.00"),  # not yet due
        invoice("2026-0104", "D1002", 60, "89.95"),
        invoice("2026-0105", "D1002", 3, "-20.00"),  # a credit note
        invoice("2026-0106", "D1003", 20, "4840.00"),
        invoice("2026-0107", "D1003", 8, "350.00", currency="USD"),
    )
    return SampleBook(debtors, invoices)


HALF = Decimal("0.5")
"""The kit lowers an open amount to half of it to make a partial payment."""
