"""How debsync writes amounts, dates, phone numbers and IBANs for a person to read: one voice
for the command line, the dossier, e-mails, SMS and letters.

Everything is formatted by the reader's language with babel's CLDR data: ``€ 968.249,55``,
``6 december 2026``, ``030 123 4567`` and ``NL91 ABNA 0417 1643 00`` in Dutch; ``€968,249.55``
and ``6 December 2026`` in English, with phone numbers in international form. The operator
reads the command line in Dutch. Machine output (``--json``, payloads, logs) keeps ISO dates
and decimal strings and does not come here. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime
from decimal import Decimal

import phonenumbers
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from debsync.model import Language

LOCALES = {Language.NL: "nl_NL", Language.EN: "en_GB"}
"""Babel locale per language. English texts to Dutch debtors use British conventions."""
OPERATOR = Language.NL
"""The language of the command line's human output."""
HOME_REGION = "NL"
"""Phone numbers without a country code are Dutch; Dutch ones are written nationally to
Dutch readers, every other number internationally."""

_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_SHORT = {Language.NL: "dd-MM-yyyy", Language.EN: "d MMM yyyy"}
"""Short dates: ``06-12-2026`` is how Dutch readers write a date; ``06/12/2026`` reads as
12 June to an American, so English short dates name the month: ``6 Dec 2026``."""


def money(amount: Decimal, currency: str = "EUR", language: Language = OPERATOR) -> str:
    """``€ 968.249,55`` (Dutch) or ``€968,249.55`` (English); other currencies by their
    symbol or code (``US$ 1.234,50``), in the currency's own number of decimals."""
    exponent = amount.as_tuple().exponent  # a letter for NaN and infinity
    if currency == "EUR" and isinstance(exponent, int) and exponent >= -2:
        return _euros(amount, language)
    return str(format_currency(amount, currency, locale=LOCALES[language]))


_DUTCH_SEPARATORS = str.maketrans(",.", ".,")


def _euros(amount: Decimal, language: Language) -> str:
    """Babel's text for an amount of euros in whole cents, written directly: babel's number
    pattern cost more than the rest of an e-mail's text (``tests/test_formatting.py`` holds
    the two equal)."""
    sign = "-" if amount.is_signed() else ""
    digits = f"{abs(amount):,.2f}"
    if language is Language.NL:
        return f"€\xa0{sign}{digits.translate(_DUTCH_SEPARATORS)}"
    return f"{sign}€{digits}"


def number(value: Decimal | int, language: Language = OPERATOR) -> str:
    """A plain number with the language's separators: ``1.234,5`` or ``1,234.5``."""
    return str(format_decimal(value, locale=LOCALES[language]))


def long_date(day: date, language: Language = OPERATOR) -> str:
    """``6 december 2026`` or ``6 December 2026``: running text and letter dates."""
    return str(format_date(day, "long", locale=LOCALES[language]))


def short_date(day: date, language: Language = OPERATOR) -> str:
    """``06-12-2026`` or ``6 Dec 2026``: tables, SMS."""
    return str(format_date(day, _SHORT[language], locale=LOCALES[language]))


def moment(at: datetime, language: Language = OPERATOR) -> str:
    """A timestamp for a table: the short date and the time, ``06-12-2026 14:05``; the
    caller chooses the time zone and names it in the column."""
    return f"{short_date(at.date(), language)} {at:%H:%M}"


def phone(value: str, language: Language = OPERATOR) -> str:
    """``030 123 4567`` for a Dutch number read in Dutch, ``+31 30 123 4567`` otherwise,
    ``+32 2 123 45 67`` for a foreign one in either language; what is not a phone number is
    shown as given."""
    try:
        parsed = phonenumbers.parse(value, HOME_REGION)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(parsed):
        return value
    home = phonenumbers.region_code_for_number(parsed) == HOME_REGION
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if home and language is Language.NL
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return str(phonenumbers.format_number(parsed, style))


@functools.lru_cache(maxsize=1024)
def iban(value: str) -> str:
    """``NL91 ABNA 0417 1643 00``: the paper format, in groups of four, for an IBAN whose
    check digits hold; anything else is shown as given, so a typo is not dressed up."""
    compact = "".join(value.split()).upper()
    if not _IBAN.fullmatch(compact) or not _checksum_holds(compact):
        return value
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _checksum_holds(compact: str) -> bool:
    """ISO 13616: the country and check digits moved to the end, letters as 10–35, mod 97 is 1."""
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1
