"""Moneybird JSON to debsync records: contacts to debtors, sales invoices to invoices.

Ids arrive as strings and stay text; money arrives as decimal strings and becomes ``Decimal``
(never float). A plain ISO date and a plain decimal string are converted here, to what the
model's validator makes of them, so that a common sales invoice arrives in the model's own
types and the record builder takes it without the validator (``model.plain_invoice``); any
other value is passed on as it came, for the validator to parse, or reject and explain.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

STATES = ("open", "pending_payment", "reminded", "late")
"""The states of an invoice that is still owed; ``pending_payment`` is a direct debit under way."""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLAIN_DECIMAL = re.compile(r"-?\d{1,12}(?:\.\d{1,6})?")


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _date(value: Any) -> Any:
    """``2026-06-01`` as a ``date``; anything else as it came."""
    if type(value) is str and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:  # 2026-02-30: the validator says what is wrong
            return value
    return value


def _amount(value: Any) -> Decimal | str:
    """A plain decimal string as ``Decimal`` (exactly, with its decimals); anything else as
    text."""
    text = _text(value)
    return Decimal(text) if _PLAIN_DECIMAL.fullmatch(text) else text


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
        "issue_date": _date(raw.get("invoice_date")),
        "due_date": _date(raw.get("due_date")),
        "total": {"amount": _amount(raw.get("total_price_incl_tax")), "currency": currency},
        "open_amount": {"amount": _amount(raw.get("total_unpaid")), "currency": currency},
        "payment_reference": _text(raw.get("payment_reference")) or None,
        "payment_url": _text(raw.get("payment_url")) or None,
        "direct_debit": raw.get("state") == "pending_payment",
        "has_document": False,
        "reminded_by_source": reminded_by_source,
    }
