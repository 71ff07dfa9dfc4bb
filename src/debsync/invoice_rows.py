"""An invoice as the store keeps it: one flat tuple, amounts in integer minor units.

A large export has one invoice per row, and building a pydantic record per row cost more than
reading the row and storing it (issue 16). A connector whose values are already in the
model's own types hands them over as an :class:`InvoiceRow`; ``RecordBuilder.invoice_row``
checks it against the model's rules in a few comparisons (:func:`is_plain`) and the sync
stores it as it is. Whoever reads a page still gets ``Invoice`` records: :class:`Invoices`
builds each one when it is asked for, equal to what the validator builds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from functools import cache
from typing import NamedTuple, overload

from debsync.model import (
    MAX_AMOUNT,
    MAX_ID_LENGTH,
    MAX_URL_LENGTH,
    Invoice,
    Money,
    PriorStep,
    _built,
    _is_https,
    _known_currencies,
    _plain_text,
    currency_exponent,
    from_minor,
    to_minor,
)


class InvoiceRow(NamedTuple):
    """An invoice's stored values; ``total_minor`` and ``open_minor`` in ``currency``."""

    external_id: str
    number: str
    debtor_id: str
    issue_date: date
    due_date: date
    currency: str
    total_minor: int
    open_minor: int
    payment_reference: str | None = None
    payment_url: str | None = None
    direct_debit: bool = False
    has_document: bool = False
    direct_debit_failed: bool = False
    reminded_by_source: bool = False
    prior_step: PriorStep | None = None
    prior_step_on: date | None = None


_PRIOR_STEPS = frozenset(("reminder", "aanmaning", "veertiendagenbrief"))


@cache
def _amount_limit(currency: str) -> int:
    """The least implausible amount (``model.MAX_AMOUNT``) in minor units of ``currency``."""
    limit: int = int(MAX_AMOUNT) * 10 ** currency_exponent(currency)
    return limit


def is_plain(row: InvoiceRow) -> bool:
    """Whether the validator would take ``row``'s values as they are and build from them the
    invoice :func:`record` builds: the same rules as ``model.plain_invoice``, on the stored
    form (printable ASCII ids within bounds, an https link, a known currency, plausible
    amounts, dates and a prior step that agree)."""
    (ext, number, debtor_id, issued, due, currency, total, open_, reference, url) = row[:10]
    debit, document, failed, reminded, step, step_on = row[10:]
    return (
        _plain_text(ext, MAX_ID_LENGTH, 1)
        and _plain_text(number, MAX_ID_LENGTH, 1)
        and _plain_text(debtor_id, MAX_ID_LENGTH, 1)
        and type(issued) is date
        and type(due) is date
        and issued <= due
        and type(currency) is str
        and currency in _known_currencies()
        and type(total) is int
        and type(open_) is int
        and abs(open_) <= abs(total) < _amount_limit(currency)
        and (reference is None or _plain_text(reference, MAX_ID_LENGTH))
        and (url is None or (_plain_text(url, MAX_URL_LENGTH) and _is_https(url)))
        and type(debit) is bool
        and type(document) is bool
        and type(failed) is bool
        and type(reminded) is bool
        and (
            (step is None and step_on is None)
            or (step in _PRIOR_STEPS and type(step_on) is date and step_on >= issued)
        )
    )


_FIELDS = tuple(Invoice.model_fields)


def record(row: InvoiceRow, fields: frozenset[str]) -> Invoice:
    """The invoice of a plain row, as the validator builds it from a mapping with the keys
    ``fields`` (its ``model_fields_set``)."""
    currency = row.currency
    values = {
        "external_id": row.external_id,
        "number": row.number,
        "debtor_id": row.debtor_id,
        "issue_date": row.issue_date,
        "due_date": row.due_date,
        "total": _money(row.total_minor, currency),
        "open_amount": _money(row.open_minor, currency),
        "payment_reference": row.payment_reference,
        "payment_url": row.payment_url,
        "direct_debit": row.direct_debit,
        "direct_debit_failed": row.direct_debit_failed,
        "reminded_by_source": row.reminded_by_source,
        "has_document": row.has_document,
        "prior_step": row.prior_step,
        "prior_step_on": row.prior_step_on,
    }
    assert tuple(values) == _FIELDS  # the validator's order
    return _built(Invoice, values, set(fields))


def _money(minor: int, currency: str) -> Money:
    return _built(
        Money, {"amount": from_minor(minor, currency), "currency": currency}, {"amount", "currency"}
    )


def row_of(invoice: Invoice) -> InvoiceRow:
    """The stored form of a validated invoice."""
    currency = invoice.currency
    return InvoiceRow(
        invoice.external_id,
        invoice.number,
        invoice.debtor_id,
        invoice.issue_date,
        invoice.due_date,
        currency,
        to_minor(invoice.total.amount, currency),
        to_minor(invoice.open_amount.amount, currency),
        invoice.payment_reference,
        invoice.payment_url,
        invoice.direct_debit,
        invoice.has_document,
        invoice.direct_debit_failed,
        invoice.reminded_by_source,
        invoice.prior_step,
        invoice.prior_step_on,
    )


class Invoices(Sequence[Invoice]):
    """A page's invoices: the rows the sync stores, each an ``Invoice`` when read (built
    once, on first reading)."""

    def __init__(self) -> None:
        self.rows: list[InvoiceRow] = []
        self._records: list[Invoice | None] = []
        self._fields: list[frozenset[str]] = []

    def add(
        self, row: InvoiceRow, built: Invoice | None, fields: frozenset[str] = frozenset()
    ) -> None:
        """Add a plain row (``built`` None: its record is built when read, from ``fields``)
        or a validated invoice with its row."""
        self.rows.append(row)
        self._records.append(built)
        self._fields.append(fields)

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Invoice: ...

    @overload
    def __getitem__(self, index: slice) -> list[Invoice]: ...

    def __getitem__(self, index: int | slice) -> Invoice | list[Invoice]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.rows)))]
        found = self._records[index]
        if found is None:
            found = self._records[index] = record(self.rows[index], self._fields[index])
        return found

    def __iter__(self) -> Iterator[Invoice]:
        return (self[i] for i in range(len(self.rows)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Invoices({list(self)!r})"


def rows_of(invoices: Iterable[Invoice]) -> list[InvoiceRow]:
    """The stored form of a page's invoices, without building records for plain rows."""
    if isinstance(invoices, Invoices):
        return invoices.rows
    return [row_of(invoice) for invoice in invoices]
