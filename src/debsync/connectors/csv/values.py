"""Reading Dutch cells: amounts with decimal commas, day-month-year dates, debtor kinds,
languages, countries and payment methods.

A problem with a cell is worded for a reject reason and quotes the value only when it holds
nothing that could be personal data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import cache

from babel import Locale

from debsync.connectors.csv.aliases import normalise_header
from debsync.model import MAX_AMOUNT, DebtorKind, Language

_KINDS: dict[str, DebtorKind] = {
    **dict.fromkeys(
        ("b", "z", "zakelijk", "bedrijf", "organisatie", "business", "company", "b2b"),
        DebtorKind.BUSINESS,
    ),
    **dict.fromkeys(
        ("p", "c", "particulier", "prive", "consument", "consumer", "private", "person", "b2c"),
        DebtorKind.CONSUMER,
    ),
}
_DUTCH = frozenset({"nl", "nld", "dut", "nederlands", "dutch", "vlaams", "flemish", "nlnl", "nlbe"})
_DIRECT_DEBIT = ("incasso", "directdebit", "machtiging", "sepadd")
_STORNO = ("storn", "teruggestort", "teruggeboekt", "terugboeking")
"""A reversed direct debit: "Storno", "Gestorneerd" (AFAS), "Stornering", "Teruggestort"."""
_FAILED = ("mislukt", "nietgelukt", "geweigerd", "afgewezen", "failed", "returned", "rejected")

# Amounts: the common Dutch form first, then the general forms.
_AMOUNT_NL_FAST = re.compile(r"-?(?:\d{1,3}(?:\.\d{3}){1,3}|\d{1,12}),\d\d")
_AMOUNT_EN_FAST = re.compile(r"-?(?:\d{1,3}(?:,\d{3}){1,3}|\d{1,12})\.\d\d")
_AMOUNT_NL = re.compile(r"(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?")
_AMOUNT_EN = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_AMOUNT_NOISE = re.compile(r"[\s\u00a0\u202f€]|^EUR|EUR$", re.IGNORECASE)
DATE_DMY = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?:[ T]\d{1,2}:\d\d(?::\d\d)?)?")
_DATE_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d\d(?::\d\d(?:\.\d+)?)?)?")
_QUOTABLE = re.compile(r"[\d\s.,/:+\-−€()T]{1,32}")
"""A bad date or amount is quoted in a reject only when it holds nothing but digits and
separators: a shifted column must not copy a name or address into the log."""


def amount_style(value: str) -> str | None:
    """``","`` or ``"."`` when a value can only be read one way, else ``None``."""
    text = _AMOUNT_NOISE.sub("", value).strip("-+()−")
    nl, en = _AMOUNT_NL.fullmatch(text), _AMOUNT_EN.fullmatch(text)
    if nl and not en:
        return ","
    if en and not nl:
        return "."
    return None


class CellError(ValueError):
    """One cell's problem, worded for a reject reason."""


def _shown(value: str) -> str:
    return repr(value) if _QUOTABLE.fullmatch(value) else "the value"


class Values:
    """Parses dates and amounts with precompiled patterns. A problem is returned as its
    reason (a ``str``) rather than raised: bad rows are common enough to keep them cheap.
    Dates are cached because an export repeats the same few hundred of them."""

    def __init__(self, *, day_first: bool, decimal: Mapping[str, str], strict: bool) -> None:
        self.day_first = day_first
        self.decimal = decimal
        self.strict = strict
        self._dates: dict[str, date | str] = {}

    def day(self, text: str) -> date | str:
        found = self._dates.get(text)
        if found is None:
            found = self._dates[text] = self._parse_date(text)
        return found

    def _parse_date(self, text: str) -> date | str:
        match = DATE_DMY.fullmatch(text)
        if match:
            first, second, year = int(match[1]), int(match[2]), int(match[3])
            day, month = (first, second) if self.day_first else (second, first)
        elif match := _DATE_ISO.fullmatch(text):
            year, month, day = int(match[1]), int(match[2]), int(match[3])
        else:
            return f"{_shown(text)} is not a date (expected dd-mm-yyyy or yyyy-mm-dd)"
        try:
            return date(year, month, day)
        except ValueError:
            return f"{_shown(text)} is not a valid date"

    def amount(self, text: str, key: str) -> Decimal | str:
        style = self.decimal[key]
        if style == "," and _AMOUNT_NL_FAST.fullmatch(text):  # bounded: at most 12 digits
            return Decimal(text.replace(".", "").replace(",", "."))
        value = self._general_amount(text, style)
        if isinstance(value, Decimal) and not -MAX_AMOUNT < value < MAX_AMOUNT:
            return "the amount is implausibly large"
        return value

    def cents(self, text: str, key: str) -> int | None:
        """The amount of a cell in hundredths when it is written plainly with two decimals in
        its column's style (``1.234,56``): exactly what :meth:`amount` reads, scaled; ``None``
        for anything else (and for ``-0,00``), which :meth:`amount` reads."""
        style = self.decimal[key]
        plain = _AMOUNT_NL_FAST if style == "," else _AMOUNT_EN_FAST
        if plain.fullmatch(text) is None:
            return None
        found = int(text.replace(".", "").replace(",", ""))
        return found if found or text[0] != "-" else None

    def _general_amount(self, text: str, style: str) -> Decimal | str:
        """Currency signs, spaces, a sign in front or behind, parentheses, and either
        decimal separator."""
        cleaned = _AMOUNT_NOISE.sub("", text).replace("−", "-")
        negative = False
        if cleaned.startswith("(") and cleaned.endswith(")"):
            negative, cleaned = True, cleaned[1:-1]
        if cleaned.endswith(("-", "+")):
            negative, cleaned = negative or cleaned[-1] == "-", cleaned[:-1]
        elif cleaned.startswith(("-", "+")):
            negative, cleaned = negative or cleaned[0] == "-", cleaned[1:]
        readable = _AMOUNT_NL.fullmatch(cleaned) or _AMOUNT_EN.fullmatch(cleaned)
        found = amount_style(cleaned) if readable else None  # "12,00)" has a stray sign
        if found is None and readable:
            found = style  # digits only, or "1.234" / "1,234": the column's style decides
        if found is None or (self.strict and found != style):
            expected = "a decimal comma" if style == "," else "a decimal point"
            detail = f"is not an amount with {expected}" if self.strict else "is not an amount"
            return f"{_shown(text)} {detail}"
        if found == ",":
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
        value = Decimal(cleaned)
        return -value if negative else value


@cache
def _country_codes() -> dict[str, str]:
    """Dutch and English country names (as babel spells them) to ISO 3166 codes."""
    codes: dict[str, str] = {"holland": "NL", "denederlanden": "NL", "uk": "GB"}
    for locale in ("en", "nl"):
        for code, name in Locale.parse(locale).territories.items():
            if len(code) == 2 and code.isalpha():
                codes.setdefault(normalise_header(name), code)
    return codes


def country_code(text: str) -> str:
    """The ISO 3166 code of a country cell: a code, or a Dutch or English name."""
    if len(text) == 2 and text.isalpha():
        return text.upper()
    code = _country_codes().get(normalise_header(text))
    if code is None:
        raise CellError(f"{text!r} is not a country name or ISO 3166 code")
    return code


def language(text: str) -> Language:
    """Dutch variants are Dutch; any other language gets English, which a foreign debtor more
    likely reads than Dutch."""
    norm = normalise_header(text)
    return Language.NL if not norm or norm in _DUTCH else Language.EN


def debtor_kind(text: str) -> DebtorKind | None:
    """The kind a ``Type``/``Soort`` cell names (``zakelijk``, ``particulier``, ``B2B``…), or
    ``None`` when it names none."""
    return _KINDS.get(normalise_header(text))


def number_or_none(text: str) -> str | None:
    """A KvK or VAT cell, or ``None`` for a placeholder without a digit ("n.v.t.", "-",
    "geen"): consumer rows carry those, and they are no number to reject the debtor for."""
    return text if any(ch.isdigit() for ch in text) else None


def is_direct_debit(method: str) -> bool:
    """Whether a payment-method cell means the debtor pays by SEPA direct debit."""
    norm = normalise_header(method)
    return any(word in norm for word in _DIRECT_DEBIT)


def is_failed_collection(method: str) -> bool:
    """Whether a payment-method or status cell says the direct debit failed: a storno
    ("Gestorneerd", "Stornering") or a direct debit with a failure word ("Incasso mislukt",
    "Direct debit returned"). A failed payment of another kind ("Betaling mislukt") is not."""
    norm = normalise_header(method)
    return any(word in norm for word in _STORNO) or (
        any(word in norm for word in _DIRECT_DEBIT) and any(word in norm for word in _FAILED)
    )
