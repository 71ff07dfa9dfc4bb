"""Moneybird JSON to debsync records: contacts to debtors, sales invoices to invoices.

Ids arrive as strings and stay text; money arrives as decimal strings and is parsed as
``Decimal`` (never float) by the model. A sales invoice of the common shape is built without
the model's validator (:func:`plain_invoice`), to the same record; anything else goes through
it.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from debsync.model import (
    MAX_AMOUNT,
    MAX_ID_LENGTH,
    Invoice,
    Money,
    PaymentUrl,
    currency_exponent,
)

STATES = ("open", "pending_payment", "reminded", "late")
"""The states of an invoice that is still owed; ``pending_payment`` is a direct debit under way."""


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def contact_emails(contact: dict[str, Any]) -> list[str]:
    """``send_invoices_to_email`` first, then ``email``, then the contact people's, each once;
    a field may hold several addresses separated by commas."""
    found: list[str] = []
    candidates = [contact.get("send_invoices_to_email"), contact.get("email")]
    candidates += [p.get("email") for p in contact.get("contact_people") or ()]
    for value in candidates:
        for part in _text(value).replace(";", ",").split(","):
            address = part.strip()
            if address and address.lower() not in (f.lower() for f in found):
                found.append(address)
    return found


def debtor_data(contact: dict[str, Any], language: str) -> dict[str, Any]:
    """A debtor mapping from a contact: business when it has a company name, KvK or tax
    number, a consumer otherwise."""
    company = _text(contact.get("company_name"))
    person = " ".join(
        p for p in (_text(contact.get("firstname")), _text(contact.get("lastname"))) if p
    )
    kvk, vat = _text(contact.get("chamber_of_commerce")), _text(contact.get("tax_number"))
    lines = [x for x in (_text(contact.get("address1")), _text(contact.get("address2"))) if x]
    zipcode, city = _text(contact.get("zipcode")), _text(contact.get("city"))
    address = None
    if lines or zipcode or city:
        address = {
            "lines": lines,
            "postcode": zipcode,
            "city": city,
            "country": _text(contact.get("country")) or "NL",
        }
    phones = [p for p in [_text(contact.get("phone"))] if p]
    return {
        "external_id": _text(contact.get("id")),
        "name": company or person,
        "kind": "business" if company or kvk or vat else "consumer",
        "emails": contact_emails(contact),
        "phones": phones,
        "language": "en" if _text(language).lower().startswith("en") else "nl",
        "address": address,
        "kvk": kvk or None,
        "vat": vat or None,
    }


def workflow_reminds(raw: dict[str, Any]) -> bool:
    """Whether Moneybird's own workflow reminds this invoice: it is not paused and a reminder
    is scheduled (``next_reminder``) or was sent (``reminder_count``, state ``reminded``)."""
    if raw.get("paused"):
        return False
    count = raw.get("reminder_count")
    reminded = isinstance(count, int) and count > 0
    return bool(raw.get("next_reminder")) or reminded or raw.get("state") == "reminded"


def invoice_data(raw: dict[str, Any], *, reminded_by_source: bool = False) -> dict[str, Any]:
    """An invoice mapping from a sales invoice; a ``pending_payment`` invoice is collected by
    direct debit and never dunned; ``reminded_by_source`` when Moneybird's workflow reminds it
    and the instance leaves that to Moneybird."""
    currency = _text(raw.get("currency")) or "EUR"
    return {
        "external_id": _text(raw.get("id")),
        "number": _text(raw.get("invoice_id")),
        "debtor_id": _text(raw.get("contact_id")),
        "issue_date": raw.get("invoice_date"),
        "due_date": raw.get("due_date"),
        "total": {"amount": _text(raw.get("total_price_incl_tax")), "currency": currency},
        "open_amount": {"amount": _text(raw.get("total_unpaid")), "currency": currency},
        "payment_reference": _text(raw.get("payment_reference")) or None,
        "payment_url": _text(raw.get("payment_url")) or None,
        "direct_debit": raw.get("state") == "pending_payment",
        "has_document": False,
        "reminded_by_source": reminded_by_source,
    }


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_AMOUNT = re.compile(r"-?\d{1,10}(?:\.\d{1,4})?")
_PAYMENT_URL: TypeAdapter[str] = TypeAdapter(PaymentUrl)
_MONEY_FIELDS = frozenset({"amount", "currency"})
_INVOICE_FIELDS = frozenset(invoice_data({}))
_INVOICE_RECORD = {
    name: None if name in _INVOICE_FIELDS else field.default
    for name, field in Invoice.model_fields.items()
}
"""An invoice's values in the validator's order, with the defaults it fills in for the
fields an :func:`invoice_data` mapping leaves out."""
_FLAGS = ("direct_debit", "has_document", "reminded_by_source")
_TEXT_LIMITS = {"external_id": MAX_ID_LENGTH, "number": MAX_ID_LENGTH, "debtor_id": MAX_ID_LENGTH}
M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


@cache
def _quantum(code: str) -> Decimal | None:
    """The minor unit of a currency code ``Money`` keeps exactly as spelled; ``None`` for any
    other spelling (the validator normalises or rejects it)."""
    try:
        spelled = Money.of(0, code).currency == code
    except ValueError:
        return None
    return Decimal(1).scaleb(-currency_exponent(code)) if spelled else None


def _built(model: type[M], values: dict[str, Any], fields: frozenset[str]) -> M:
    """A record from values already validated, stored as the validator stores them (what
    ``model_construct`` does, without its per-field work). ``fields`` are the keys the
    mapping gave: the validator's ``model_fields_set``."""
    record = model.__new__(model)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", set(fields))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


def _money(value: Any, code: str) -> Money | None:
    """``Money`` of ``{"amount": "12.50", "currency": code}``; ``None`` for any other shape."""
    if type(value) is not dict or value.keys() != _MONEY_FIELDS or value["currency"] != code:
        return None
    amount = value["amount"]
    return _plain_money(amount, code) if type(amount) is str else None


@lru_cache(maxsize=1024)
def _plain_money(amount: str, code: str) -> Money | None:
    """A plain decimal string with no more decimals than its currency has, of a plausible
    size, as ``Money`` (frozen, so one serves every invoice of that amount); ``None``
    otherwise. Amounts repeat: an open invoice's unpaid amount is mostly its total, and a
    small cache catches that and the common prices without holding a large one in memory."""
    quantum = _quantum(code)
    if quantum is None or _AMOUNT.fullmatch(amount) is None:
        return None
    exact = Decimal(amount)
    if abs(exact) >= MAX_AMOUNT:
        return None
    quantized = exact.quantize(quantum)  # Money's own rounding, with nothing to round
    if quantized != exact:
        return None
    return _built(Money, {"amount": quantized, "currency": code}, _MONEY_FIELDS)


def plain_invoice(data: dict[str, Any]) -> Invoice | None:
    """The invoice of an :func:`invoice_data` mapping in its common shape, built directly:
    printable text without spaces to strip (nothing for the model to clean), ids within their
    bounds, ISO dates, plain decimal amounts in a known currency spelled as the model keeps
    it, consistent totals. Equal to ``Invoice.model_validate(data)``, its fields set
    included; ``None`` for anything else: the validator decides, and explains."""
    if data.keys() != _INVOICE_FIELDS:
        return None
    texts = [data[name] for name in _TEXT_LIMITS]
    reference, url = data["payment_reference"], data["payment_url"]
    texts += [value for value in (reference, url) if value is not None]
    issued, due, total = data["issue_date"], data["due_date"], data["total"]
    currency = total.get("currency") if type(total) is dict else None
    if any(type(t) is not str for t in texts) or any(type(data[f]) is not bool for f in _FLAGS):
        return None
    if (
        type(issued) is not str
        or type(due) is not str
        or type(currency) is not str
        or _DATE.fullmatch(issued) is None
        or _DATE.fullmatch(due) is None
    ):
        return None
    joined = " ".join(texts)  # one check for all: printable text has no line break or control
    if not joined.isprintable() or any(t.strip() != t for t in texts):
        return None
    if any(not 0 < len(data[n]) <= limit for n, limit in _TEXT_LIMITS.items()) or (
        reference is not None and len(reference) > MAX_ID_LENGTH
    ):
        return None
    money, unpaid = _money(total, currency), _money(data["open_amount"], currency)
    if money is None or unpaid is None or abs(unpaid.amount) > abs(money.amount):
        return None
    try:
        issue_date, due_date = date.fromisoformat(issued), date.fromisoformat(due)
        payment_url = None if url is None else _PAYMENT_URL.validate_python(url)
    except (ValueError, ValidationError):
        return None
    if due_date < issue_date:
        return None
    values = _INVOICE_RECORD.copy()
    values.update(data)
    values.update(
        issue_date=issue_date,
        due_date=due_date,
        total=money,
        open_amount=unpaid,
        payment_url=payment_url,
    )
    return _built(Invoice, values, _INVOICE_FIELDS)
