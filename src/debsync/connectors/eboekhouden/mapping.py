"""e-Boekhouden records to debsync's: open items, relations, and the fingerprints that let an
unchanged sync skip both.

An open item's fingerprint (``Page.raw``, 16 bytes) is three parts: the payment term the due
date was computed with (2 bytes), a digest of what identifies the invoice (mutation, number,
relation, date, total; 7 bytes) and a digest of its amounts (paid, outstanding; 7 bytes). The
sync engine hands it back unchanged as ``Previous`` next time, so an item whose amounts alone
changed (a partial payment) is rebuilt with the term it had, without fetching its mutation
again; only a new or edited item costs a detail call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from debsync.connectors.base import RecordBuilder
from debsync.model import Address, Debtor, DebtorKind

CURRENCY = "EUR"
"""e-Boekhouden's API has no currency field: amounts are euros."""

_KINDS = {"B": DebtorKind.BUSINESS, "P": DebtorKind.CONSUMER}
_SPLIT = re.compile(r"[;,\s]+")
_EMAIL_FIELDS = ("emailAddressReminder", "emailAddressInvoice", "emailAddress")
"""Where reminders go, in order: the reminder address, then the invoice address, then the
general one."""
_PHONE_FIELDS = ("phoneNumber", "mobilePhoneNumber")
_DROPPABLE = ("kvk", "vat", "iban")
_COUNTRIES = {
    "nederland": "NL",
    "netherlands": "NL",
    "the netherlands": "NL",
    "holland": "NL",
    "belgie": "BE",
    "belgië": "BE",
    "belgium": "BE",
    "duitsland": "DE",
    "deutschland": "DE",
    "germany": "DE",
}


class ItemError(ValueError):
    """An open item or relation that cannot be used; the message names the field, not its
    value."""


def amount(value: Any, field: str) -> Decimal:
    """A JSON amount as a ``Decimal``: numbers arrive as ``Decimal`` or ``int`` (see
    ``rest.decode``), SOAP amounts as text."""
    if isinstance(value, bool):
        raise ItemError(f"{field} is not an amount")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise ItemError(f"{field} is not an amount")


def day(value: Any, field: str) -> date:
    """``2026-10-01`` or ``2026-10-01T00:00:00`` as a date."""
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ItemError(f"{field} is not a date") from None


@dataclass(frozen=True)
class OpenItem:
    """One open debtor item, from the REST list or SOAP's ``GetOpenPosten``."""

    external_id: str
    number: str
    debtor_id: str
    issue_date: date
    total: Decimal
    paid: Decimal
    outstanding: Decimal
    debtor_entry: tuple[str, ...]
    """What the list says about the relation: changes here re-fetch its details."""


def rest_item(item: Mapping[str, Any]) -> OpenItem:
    """An ``OutstandingInvoiceListItem``."""
    mutation = item.get("mutationId")
    if not isinstance(mutation, int) or isinstance(mutation, bool):
        raise ItemError("mutationId is missing")
    relation = item.get("relationId")
    if not isinstance(relation, int) or isinstance(relation, bool):
        raise ItemError("relationId is missing")
    number = str(item.get("invoiceNumber") or "").strip()
    return OpenItem(
        external_id=str(mutation),
        number=number or str(mutation),
        debtor_id=str(relation),
        issue_date=day(item.get("date"), "date"),
        total=amount(item.get("totalAmount"), "totalAmount"),
        paid=amount(item.get("paidAmount", 0), "paidAmount"),
        outstanding=amount(item.get("outstandingAmount"), "outstandingAmount"),
        debtor_entry=(
            str(relation),
            str(item.get("relationCode") or ""),
            str(item.get("company") or ""),
        ),
    )


class Fingerprints:
    """The raw fingerprints of items and relations, salted with the settings that change what
    a record means (the default payment term)."""

    def __init__(self, salt: str) -> None:
        self.salt = salt.encode()

    def _digest(self, parts: tuple[object, ...], size: int) -> bytes:
        return hashlib.blake2b(self.salt + repr(parts).encode(), digest_size=size).digest()

    def identity(self, item: OpenItem) -> bytes:
        return self._digest(
            (item.external_id, item.number, item.debtor_id, item.issue_date, item.total), 7
        )

    def amounts(self, item: OpenItem) -> bytes:
        return self._digest((item.paid, item.outstanding), 7)

    def invoice(self, item: OpenItem, term: int) -> bytes:
        return term.to_bytes(2, "big") + self.identity(item) + self.amounts(item)

    def debtor(self, item: OpenItem) -> bytes:
        return self._digest(item.debtor_entry, 16)


def known_term(previous: bytes | None, fingerprints: Fingerprints, item: OpenItem) -> int | None:
    """The payment term an item was built with last sync, when it is the same invoice."""
    if previous is None or len(previous) != 16 or previous[2:9] != fingerprints.identity(item):
        return None
    return int.from_bytes(previous[:2], "big")


def invoice_data(item: OpenItem, term: int) -> dict[str, Any]:
    """The ``Invoice`` mapping of an open item whose payment term is ``term`` days."""
    try:
        due = item.issue_date + timedelta(days=term)
    except OverflowError:
        raise ItemError("date plus termOfPayment is beyond the calendar") from None
    return {
        "external_id": item.external_id,
        "number": item.number,
        "debtor_id": item.debtor_id,
        "issue_date": item.issue_date,
        "due_date": due,
        "total": {"amount": item.total, "currency": CURRENCY},
        "open_amount": {"amount": item.outstanding, "currency": CURRENCY},
        "payment_reference": item.number,
    }


def payment_term(mutation: Mapping[str, Any], default: int) -> int:
    """A mutation's ``termOfPayment`` in days, the default when it has none."""
    term = mutation.get("termOfPayment")
    if isinstance(term, int) and not isinstance(term, bool) and 0 <= term < 2**16:
        return term
    return default


def _text(relation: Mapping[str, Any], key: str) -> str:
    value = relation.get(key)
    return value.strip() if isinstance(value, str) else ""


def _country(text: str) -> str | None:
    if not text:
        return "NL"
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return _COUNTRIES.get(text.casefold())


def build_debtor(
    builder: RecordBuilder,
    relation: Mapping[str, Any],
    *,
    external_id: str,
    fallback_name: str,
    ref: str,
    raw: bytes | None,
) -> Debtor | None:
    """A relation's full detail (``GET /v1/relation/{id}``) as a debtor. An unusable address,
    KvK, VAT or IBAN number is dropped with a reject, so the debtor and its reminders stay."""
    emails = [
        email for key in _EMAIL_FIELDS for email in _SPLIT.split(_text(relation, key)) if email
    ]
    phones = [phone for key in _PHONE_FIELDS if (phone := _text(relation, key))]
    data: dict[str, Any] = {
        "external_id": external_id,
        "name": _text(relation, "name") or fallback_name or external_id,
        "kind": _KINDS.get(_text(relation, "type").upper(), DebtorKind.UNKNOWN),
        "emails": list(dict.fromkeys(emails)),
        "phones": list(dict.fromkeys(phones)),
        "address": _address(builder, relation, ref),
        "kvk": _text(relation, "companyRegistrationNumber") or None,
        "vat": _text(relation, "vatNumber") or None,
        "iban": _text(relation, "iban") or None,
    }
    try:
        Debtor.model_validate({**data, "emails": [], "phones": []})
    except ValidationError as error:
        for item in error.errors(include_url=False, include_input=False):
            field = str(item["loc"][0]) if item["loc"] else ""
            if field in _DROPPABLE and data[field] is not None:
                data[field] = None
                builder.reject("debtor", ref, f"{field} dropped: {item['msg']}", dropped=True)
    return builder.debtor(data, ref=ref, raw=raw)


def _address(builder: RecordBuilder, relation: Mapping[str, Any], ref: str) -> Address | None:
    street, postcode, city = (_text(relation, key) for key in ("address", "postalCode", "city"))
    if not (street or postcode or city):
        return None
    country = _country(_text(relation, "country"))
    if country is None:
        builder.reject("debtor", ref, "address dropped: country is not an ISO code", dropped=True)
        return None
    try:
        return Address(
            lines=(street,) if street else (), postcode=postcode, city=city, country=country
        )
    except ValidationError as error:
        reason = "; ".join(e["msg"] for e in error.errors(include_url=False, include_input=False))
        builder.reject("debtor", ref, f"address dropped: {reason}", dropped=True)
        return None
