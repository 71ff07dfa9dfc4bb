"""Exact Online records to debsync records: accounts with their main contact to debtors, and
the payment terms of one sales entry aggregated into one invoice.

A receivable that was partly paid is split by Exact into several payment-term rows (one per
part, each with its own ``ID``); the invoice's open amount is the sum of its open rows and
its due date the earliest open row's. Ids are ``{division}:{guid}``, so one instance may read
many divisions and a document or note finds its way back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from debsync.connectors.exact.odata import parse_day
from debsync.model import DebtorKind

RECEIPT = 20
"""``LineType`` of a receivable (a payable is 22): sync/Cashflow/PaymentTerms mixes both."""

OPEN_STATUSES = frozenset({20, 30, 40})
"""Payment-term ``Status``: 20 open, 30 selected for collection, 40 processed; 50 matched
(paid) is closed."""

COLLECTION = "I"
"""``PaymentMethod`` I: collected by direct debit (also when a mandate is set)."""

TERM_FIELDS = (
    "ID,Timestamp,LineType,Account,TransactionEntryID,InvoiceNumber,InvoiceDate,DueDate,"
    "AmountFC,TransactionAmountFC,Currency,Status,IsFullyPaid,PaymentMethod,PaymentReference,"
    "DirectDebitMandate"
)
ACCOUNT_FIELDS = (
    "ID,Timestamp,Code,Name,Email,Phone,AddressLine1,AddressLine2,Postcode,City,Country,"
    "Language,VATNumber,ChamberOfCommerce,MainContact"
)
CONTACT_FIELDS = "ID,Timestamp,Account,Email,BusinessEmail,Phone,Mobile,BusinessPhone,Language"


def key(division: int, value: Any) -> str:
    """The external id of a record of ``division``."""
    return f"{division}:{str(value).lower()}"


def split_key(external_id: str) -> tuple[int, str]:
    """``(division, guid)`` of an external id made by :func:`key`."""
    division, _, guid = external_id.partition(":")
    return int(division), guid


def fingerprint(*records: Any) -> bytes:
    """A digest of the raw input a record is built from (``Page.raw``): the ``repr`` of
    records whose keys come in a fixed order (``$select``'s, or the cursor's)."""
    return hashlib.blake2b(repr(records).encode(), digest_size=16).digest()


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _unique(values: Iterable[Any]) -> list[str]:
    found: list[str] = []
    for value in values:
        text = _text(value)
        if text and text.lower() not in (f.lower() for f in found):
            found.append(text)
    return found


def main_contact(
    account: Mapping[str, Any], contacts: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The account's ``MainContact``, else its first contact."""
    listed = list(contacts)
    main = _text(account.get("MainContact")).lower()
    return next((c for c in listed if _text(c.get("ID")).lower() == main), None) or next(
        iter(listed), None
    )


def debtor_data(
    division: int,
    account: Mapping[str, Any],
    contact: Mapping[str, Any] | None,
    overrides: Mapping[str, DebtorKind],
) -> dict[str, Any]:
    """A debtor from an account and its main contact: business when it has a VAT or KvK
    number, a consumer otherwise, unless ``overrides`` names its code."""
    person = contact or {}
    code = _text(account.get("Code"))
    vat, kvk = _text(account.get("VATNumber")), _text(account.get("ChamberOfCommerce"))
    kind = overrides.get(code) or (DebtorKind.BUSINESS if vat or kvk else DebtorKind.CONSUMER)
    lines = _unique([account.get("AddressLine1"), account.get("AddressLine2")])
    postcode, city = _text(account.get("Postcode")), _text(account.get("City"))
    address = None
    if lines or postcode or city:
        country = _text(account.get("Country")) or "NL"
        address = {"lines": lines, "postcode": postcode, "city": city, "country": country}
    language = _text(account.get("Language")) or _text(person.get("Language"))
    return {
        "external_id": key(division, account.get("ID")),
        "name": _text(account.get("Name")),
        "kind": kind,
        "emails": _unique([account.get("Email"), person.get("Email"), person.get("BusinessEmail")]),
        "phones": _unique(
            [
                account.get("Phone"),
                person.get("Mobile"),
                person.get("BusinessPhone"),
                person.get("Phone"),
            ]
        ),
        "language": "en" if language.lower().startswith("en") else "nl",
        "address": address,
        "kvk": kvk or None,
        "vat": vat or None,
    }


def is_open(row: Mapping[str, Any]) -> bool:
    """A receivable row still owed."""
    return (
        row.get("LineType") == RECEIPT
        and row.get("Status") in OPEN_STATUSES
        and not row.get("IsFullyPaid")
    )


class Entry:
    """What is known of one sales entry (one invoice) across its payment-term rows. An entry
    read from the cursor stays in its JSON form until it is looked into or changed, so an
    unchanged division costs no conversion."""

    __slots__ = ("_header", "_json", "_rows")

    def __init__(
        self,
        header: dict[str, Any] | None = None,
        rows: dict[str, tuple[Decimal, str]] | None = None,
    ) -> None:
        self._json: list[Any] | None = None
        self._header = header if header is not None else {}
        """The latest row seen: invoice number, dates, total, account, currency."""
        self._rows: dict[str, tuple[Decimal, str]] | None = rows if rows is not None else {}
        """Open rows: row id → (open amount, due date as ``/Date(ms)/``)."""

    @classmethod
    def from_state(cls, state: list[Any]) -> Entry:
        entry = cls()
        entry._json, entry._rows = state, None
        return entry

    def _loaded(self) -> dict[str, tuple[Decimal, str]]:
        if self._rows is None:
            assert self._json is not None
            header, rows = self._json
            self._header = dict(header)
            self._rows = {r: (Decimal(a), d) for r, (a, d) in rows.items()}
        return self._rows

    @property
    def header(self) -> dict[str, Any]:
        self._loaded()
        return self._header

    @property
    def rows(self) -> dict[str, tuple[Decimal, str]]:
        return self._loaded()

    def drop(self, row_ids: set[str]) -> None:
        """Rows deleted in Exact."""
        self._rows = {r: v for r, v in self._loaded().items() if r not in row_ids}
        self._json = None

    @property
    def account(self) -> str:
        header = self._json[0] if self._rows is None and self._json else self._header
        return _text(header.get("Account")).lower()

    @property
    def owed(self) -> bool:
        """Whether any row is still open."""
        return bool(self.row_ids())

    def row_ids(self) -> set[str]:
        rows = self._json[1] if self._rows is None and self._json else self._rows
        return set(rows or ())

    def state(self) -> list[Any]:
        """The cursor form: ``[header fields, {row: [amount, due]}]``."""
        if self._rows is None and self._json is not None:
            return self._json
        return [self._header, {r: [str(a), d] for r, (a, d) in self.rows.items()}]

    def apply(self, row: Mapping[str, Any]) -> None:
        """Take a changed row: its header fields, and its open part or its closing."""
        rows = self._loaded()
        self._json = None
        self._header = {k: _plain(row.get(k)) for k in _HEADER}
        row_id = _text(row.get("ID")).lower()
        if is_open(row):
            rows[row_id] = (Decimal(str(row.get("AmountFC") or 0)), str(row.get("DueDate")))
        else:
            rows.pop(row_id, None)


_HEADER = (
    "Account",
    "InvoiceNumber",
    "InvoiceDate",
    "TransactionAmountFC",
    "Currency",
    "PaymentMethod",
    "PaymentReference",
    "DirectDebitMandate",
)


def _plain(value: Any) -> Any:
    """A value the JSON cursor can hold: an amount as its decimal string."""
    return str(value) if isinstance(value, Decimal) else value


def invoice_data(division: int, entry_id: str, entry: Entry) -> dict[str, Any]:
    """An invoice from an entry with at least one open row."""
    header = entry.header
    currency = _text(header.get("Currency")) or "EUR"
    open_amount = sum((a for a, _ in entry.rows.values()), Decimal(0))
    due = min((parse_day(d) for _, d in entry.rows.values()), default=None, key=_day_key)
    total = header.get("TransactionAmountFC")
    number = _text(header.get("InvoiceNumber"))
    collecting = header.get("PaymentMethod") == COLLECTION or bool(header.get("DirectDebitMandate"))
    total = Decimal(str(total)) if total is not None else open_amount
    return {
        "external_id": key(division, entry_id),
        "number": number,
        "debtor_id": key(division, header.get("Account")),
        "issue_date": parse_day(header.get("InvoiceDate")),
        "due_date": due,
        "total": {"amount": total, "currency": currency},
        "open_amount": {"amount": open_amount, "currency": currency},
        "payment_reference": _text(header.get("PaymentReference")) or None,
        "direct_debit": collecting,
        "has_document": True,
    }


def _day_key(day: Any) -> Any:
    return (day is None, day)
