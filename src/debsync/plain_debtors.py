"""A debtor and its address built without their validators when nothing in them needs
validating: equal to what the validator builds, its fields set included.

A first sync validates every debtor it meets, and for a plain one (printable ASCII names,
plain e-mail addresses and phone numbers, an 8-digit KvK number) that cost more than reading
its row. Anything else, or anything the validator would refuse, returns ``None``: the
validator decides, and explains (``model.plain_invoice`` does the same for invoices).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from debsync.model import (
    _POSTCODE_NL,
    MAX_ID_LENGTH,
    MAX_POSTCODE_LENGTH,
    MAX_TEXT_LENGTH,
    Address,
    Debtor,
    DebtorKind,
    Language,
    _built,
    _plain_text,
    _with_defaults,
    normalise_email,
    normalise_iban,
    normalise_phone,
)

_ADDRESS_FIELDS = {"lines", "postcode", "city", "country"}


def plain_address(lines: Sequence[str], postcode: str, city: str, country: str) -> Address | None:
    """``Address(lines=lines, postcode=postcode, city=city, country=country)`` when every
    part is plain text and a Dutch postcode is well-formed; ``None`` otherwise."""
    if not (
        all(_plain_text(line, MAX_TEXT_LENGTH) for line in lines)
        and _plain_text(postcode, MAX_POSTCODE_LENGTH)
        and _plain_text(city, MAX_TEXT_LENGTH)
        and _plain_text(country, 2, 2)
        and country.isalpha()
    ):
        return None
    code = country.upper()
    if code == "NL" and postcode:
        match = _POSTCODE_NL.match(postcode)
        if match is None:
            return None
        postcode = f"{match[1]} {match[2].upper()}"
    values = {"lines": tuple(lines), "postcode": postcode, "city": city, "country": code}
    return _built(Address, values, set(_ADDRESS_FIELDS))


def stored_address(document: Mapping[str, Any]) -> Address:
    """An address read back from the JSON document the store keeps of it: built directly
    when it is plain (it was validated when stored), else validated again."""
    if type(document) is dict and document.keys() == _ADDRESS_FIELDS:
        lines = document["lines"]
        if type(lines) is list:
            found = plain_address(
                lines, document["postcode"], document["city"], document["country"]
            )
            if found is not None:
                return found
    return Address.model_validate(document)


def plain_debtor(data: Mapping[str, Any]) -> Debtor | None:
    """``Debtor.model_validate(data)`` for a mapping in the model's own types (enum members,
    an ``Address`` or ``None``) whose text is plain and whose contacts pass their checks;
    ``None`` for anything else."""
    values = _with_defaults(Debtor, data)
    if values is None:
        return None
    if not (
        _plain_text(values["external_id"], MAX_ID_LENGTH, 1)
        and _plain_text(values["name"], MAX_TEXT_LENGTH, 1)
        and type(values["kind"]) is DebtorKind
        and type(values["language"]) is Language
        and (values["address"] is None or type(values["address"]) is Address)
    ):
        return None
    emails: Any = values["emails"]
    phones: Any = values["phones"]
    kvk, vat, iban = (_given(values[name]) for name in ("kvk", "vat", "iban"))
    if (
        type(emails) not in (list, tuple)
        or type(phones) not in (list, tuple)
        or vat is not None  # the VAT check rewrites it: the validator's part
        or not (kvk is None or (type(kvk) is str and len(kvk) == 8 and _digits(kvk)))
        or not (iban is None or type(iban) is str)
    ):
        return None
    try:
        values["emails"] = tuple(normalise_email(_unstripped(e)) for e in emails)
        values["phones"] = tuple(normalise_phone(_unstripped(p)) for p in phones)
        values["iban"] = None if iban is None else normalise_iban(iban)
    except ValueError:  # the validator says which value failed
        return None
    values["kvk"], values["vat"] = kvk, None
    return _built(Debtor, values, set(data))


def _given(value: Any) -> Any:
    """A KvK, VAT or IBAN value as its validator first reads it: empty is none."""
    return None if value is None or value == "" else value


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _unstripped(value: Any) -> str:
    """A contact as the validator hands it to its check: a string with nothing to strip."""
    if type(value) is not str or value.strip() != value:
        raise ValueError("not a plain contact")
    return value
