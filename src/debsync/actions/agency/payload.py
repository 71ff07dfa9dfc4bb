"""The parts of a ``debsync.handoff/v1`` case built from the message context: creditor,
debtor address, interest and costs as docs/handoff.schema.json states them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from debsync.actions.base import CreditorContext, MessageContext
from debsync.actions.webhook import amount_text
from debsync.model import Address, DebtorKind

HANDOFF_SCHEMA = "debsync.handoff/v1"


_STREET_LINE = re.compile(
    r"^(?P<street>.+?)\s+(?P<number>[0-9]{1,5})"
    r"(?:\s*[-/]\s*(?P<attached>[0-9A-Za-z]{1,6})"
    r"|\s*(?P<suffix>[A-Za-z][0-9A-Za-z]{0,5}(?:\s[0-9A-Za-z]{1,4})?))?$"
)


@dataclass(frozen=True)
class StreetLine:
    street: str
    house_number: str
    house_number_suffix: str | None


def split_street_line(line: str) -> StreetLine | None:
    """``"Dorpsstraat 14 A"`` → Dorpsstraat, 14, A; ``"Hoofdweg 123-II"`` → …, 123, II;
    ``None`` for a line that does not read as a Dutch street and house number."""
    found = _STREET_LINE.match(" ".join(line.split()))
    if found is None or not any(ch.isalpha() for ch in found["street"]):
        return None
    return StreetLine(found["street"], found["number"], found["attached"] or found["suffix"])


def address_json(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    parts = None
    if address.country == "NL" and address.lines:
        parts = split_street_line(address.lines[-1])  # a Dutch street line comes last
    return {
        "lines": list(address.lines),
        "street": parts.street if parts else None,
        "house_number": parts.house_number if parts else None,
        "house_number_suffix": parts.house_number_suffix if parts else None,
        "postal_code": address.postcode or None,
        "city": address.city or None,
        "country": address.country,
    }


def creditor_json(creditor: CreditorContext) -> dict[str, Any]:
    return {
        "name": creditor.name,
        "kvk": creditor.kvk,
        "vat_number": creditor.vat,
        "iban": creditor.iban,
        "bic": creditor.bic,
        "email": creditor.email,
        "phone": creditor.phone,
        "website": creditor.website,
        "address": address_json(creditor.address),
    }


def interest_json(context: MessageContext) -> dict[str, Any] | None:
    """Statutory interest and how the core computed it: the article, the period, the day count
    and the compounding (``MessageContext.interest_claim``)."""
    claim = context.interest_claim
    if context.interest is None or claim is None:
        return None
    return {
        "type": claim.article,
        "amount": amount_text(context.interest, context.currency),
        "from": claim.start.isoformat(),
        "until": claim.until.isoformat(),
        "day_count": claim.day_count,
        "compounding": claim.compounding,
    }


def costs_json(context: MessageContext) -> dict[str, Any] | None:
    """Collection costs and their legal basis: the BIK staffel (consumers always; businesses
    where the policy chose it) or the EUR 40 per invoice of art. 6:96 lid 4 BW (never VAT)."""
    if context.costs is None:
        return None
    vat_rate = context.costs_vat_rate
    if context.debtor.kind is not DebtorKind.BUSINESS:
        basis = "bik_staffel"
    elif context.costs_basis == "compensation":
        basis, vat_rate = "b2b_compensation", None
    else:
        basis = "b2b_staffel"
    return {
        "basis": basis,
        "amount": amount_text(context.costs, context.currency),
        "vat_rate": None if vat_rate is None else str(vat_rate),
    }
