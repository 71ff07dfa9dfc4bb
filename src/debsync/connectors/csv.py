"""The built-in ``csv`` connector: open-items exports ("openstaande posten") as Dutch
bookkeeping programs write them.

One file is one full snapshot. The connector streams it a page at a time and tolerates what
real exports contain: ``;``, ``,`` or tab separators, UTF-8 with or without BOM or Windows-1252,
decimal commas with thousands dots, Dutch and ISO dates, Dutch and English header names, and
report-style layouts (a title block, debtor group headers, total rows, blank lines). A row it
cannot use becomes a :class:`~debsync.connectors.base.Reject` located by ``file:line``; the
other rows sync. The full reference is ``docs/connectors/csv.md``.
"""

from __future__ import annotations

import codecs
import csv
import errno
import hashlib
import io
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal, NamedTuple

from babel import Locale
from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from debsync import hookimpl
from debsync.connectors.base import (
    JSON,
    Connector,
    ConnectorSettings,
    Page,
    RecordBuilder,
)
from debsync.errors import FatalConnectorError, RetryableConnectorError
from debsync.model import DEFAULT_CURRENCY, Address, Currency, DebtorKind, Language

ColumnKey = Literal[
    "debtor_id",
    "name",
    "kind",
    "email",
    "phone",
    "language",
    "address",
    "house_number",
    "postcode",
    "city",
    "country",
    "kvk",
    "vat",
    "iban",
    "number",
    "issue_date",
    "due_date",
    "total",
    "open_amount",
    "currency",
    "payment_reference",
    "payment_url",
    "payment_method",
]
"""The fields the connector reads; the keys of the ``columns`` setting."""

ALIASES: dict[str, tuple[str, ...]] = {
    "debtor_id": (
        "Relatiecode", "Relatienr", "Relatienummer", "Debiteurnummer", "Debiteurnr",
        "Deb.nr.", "Debiteurcode", "Debiteur code", "Klantnummer", "Klantnr", "Klantcode",
        "AccountCode", "Customer ID", "Customer number", "Customer no", "Customer code",
        "Debtor ID", "Debtor number", "Account ID",
    ),
    "name": (
        "Naam", "Relatie", "Relatienaam", "Debiteur", "Debiteurnaam", "Bedrijfsnaam",
        "Bedrijf", "Klantnaam", "Klant", "AccountName", "Customer name", "Customer",
        "Debtor name", "Debtor", "Company name", "Company", "Name",
    ),
    "kind": (
        "Type", "Soort", "Soort relatie", "Relatiesoort", "Relatietype", "Klanttype",
        "Customer type", "Debtor type", "Kind",
    ),
    "email": (
        "E-mail", "Emailadres", "E-mailadres", "E-mail adres", "E-mail facturen",
        "Factuur e-mail", "Mail", "Email address", "Invoice email", "Billing email",
    ),
    "phone": (
        "Telefoon", "Telefoonnummer", "Telefoonnr", "Tel", "Mobiel", "Mobielnummer",
        "Mobiel nummer", "GSM", "Phone", "Phone number", "Telephone", "Mobile",
        "Mobile phone",
    ),
    "language": ("Taal", "Voorkeurstaal", "Correspondentietaal", "Language"),
    "address": (
        "Adres", "Straat", "Straat en huisnummer", "Adresregel 1", "Bezoekadres",
        "Address", "Street", "Address line 1",
    ),
    "house_number": ("Huisnummer", "Huisnr", "House number"),
    "postcode": ("Postcode", "Zip", "Zipcode", "Zip code", "Postal code"),
    "city": ("Plaats", "Woonplaats", "Vestigingsplaats", "Stad", "City", "Town"),
    "country": ("Land", "Landcode", "LandID", "Country", "Country code"),
    "kvk": (
        "KvK", "KvK-nummer", "KvK nr", "Kamer van Koophandel", "Chamber of Commerce",
        "CoC number", "CoC",
    ),
    "vat": (
        "BTW-nummer", "BTW nr", "BTW-id", "Btw-identificatienummer", "VAT number", "VAT ID",
        "VAT no", "VAT",
    ),
    "iban": ("IBAN", "Bankrekening", "Rekeningnummer", "Bank account"),
    "number": (
        "Factuurnummer", "Factuurnr.", "Boekstuknummer", "Boekstuk", "Invoice number",
        "Invoice no", "InvoiceNumber", "Invoice ID",
    ),
    "issue_date": (
        "Factuurdatum", "Datum", "Boekdatum", "Documentdatum", "Invoice date", "Issue date",
        "Date",
    ),
    "due_date": ("Vervaldatum", "Vervalt", "Vervaldag", "Due date", "Payment due", "Due"),
    "total": (
        "Bedrag incl. btw", "Factuurbedrag", "Bedrag", "Factuur", "Totaalbedrag", "Totaal",
        "Invoice amount", "Amount incl. VAT", "Total amount", "Amount", "Total",
    ),
    "open_amount": (
        "Openstaand", "Openstaand bedrag", "Openstaand saldo", "Openstaand saldo incl. btw",
        "Open bedrag", "Saldo", "Restant", "Restbedrag", "Nog te betalen", "Open amount",
        "Outstanding", "Outstanding amount", "Amount due", "Balance due", "Balance",
    ),
    "currency": ("Valuta", "Valutacode", "Munteenheid", "Currency"),
    "payment_reference": (
        "Betalingskenmerk", "Betaalkenmerk", "Betalingsreferentie", "Payment reference",
    ),
    "payment_url": ("Betaallink", "Betaal-URL", "Payment link", "Payment URL", "Pay link"),
    "payment_method": ("Betaalwijze", "Betaalmethode", "Betalingswijze", "Payment method"),
}  # fmt: skip
"""Header names per field, most specific first: when several columns match one field, the
earliest alias wins (AFAS exports carry both ``Factuurnr.`` and ``Boekstuk``)."""

MULTI_COLUMN: frozenset[str] = frozenset({"email", "phone"})
"""Fields that collect every matching column (``Telefoon`` and ``Mobiel``)."""

REQUIRED = ("number", "debtor_id", "open_amount")
DEBTOR_FIELDS = (
    "debtor_id", "name", "kind", "email", "phone", "language", "address", "house_number",
    "postcode", "city", "country", "kvk", "vat", "iban",
)  # fmt: skip
INVOICE_FIELDS = (
    "number", "issue_date", "due_date", "total", "open_amount", "currency",
    "payment_reference", "payment_url", "payment_method",
)  # fmt: skip

HEADER_SCAN_ROWS = 50
"""How far into the file the header row may be (report exports put a title block first)."""
SAMPLE_CHARS = 64 * 1024
MAX_ID_LENGTH = 255
"""Ids and references longer than the store's columns are rejected, not truncated."""
MAX_AMOUNT = Decimal(10) ** 12
"""Larger amounts are typos, and would overflow the store's integer minor units."""
_DELIMITERS = (";", ",", "\t", "|")
_CURRENCY: TypeAdapter[str] = TypeAdapter(Currency)


def normalise_header(text: str) -> str:
    """Header matching ignores case, accents, whitespace and punctuation: ``Deb.nr.`` and
    ``debnr`` are the same header."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if ch.isalnum())


_ALIAS_INDEX: dict[str, tuple[str, int]] = {
    normalise_header(alias): (key, rank)
    for key, aliases in ALIASES.items()
    for rank, alias in enumerate(aliases)
}

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
_TOTAL_ROW = re.compile(r"(?:sub|eind|grand\s*)?tota(?:a)?l\b", re.IGNORECASE)
_SPLIT_EMAILS = re.compile(r"[;,\s]+")
_SPLIT_PHONES = re.compile(r"[;,/]")

# Amounts: the common Dutch form first, then the general forms.
_AMOUNT_NL_FAST = re.compile(r"-?(?:\d{1,3}(?:\.\d{3}){1,3}|\d{1,12}),\d\d")
_AMOUNT_NL = re.compile(r"(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?")
_AMOUNT_EN = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_AMOUNT_NOISE = re.compile(r"[\s\u00a0\u202f€]|^EUR|EUR$", re.IGNORECASE)
_DATE_DMY = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?:[ T]\d{1,2}:\d\d(?::\d\d)?)?")
_DATE_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d\d(?::\d\d(?:\.\d+)?)?)?")
_QUOTABLE = re.compile(r"[\d\s.,/:+\-−€()T]{1,32}")
"""A bad date or amount is quoted in a reject only when it holds nothing but digits and
separators: a shifted column must not copy a name or address into the log."""


class CsvSettings(ConnectorSettings):
    """``[connectors.<name>]`` with ``type = "csv"``."""

    path: Path = Field(
        description="The export to read. Relative paths resolve against the directory of "
        "connectors.toml."
    )
    delimiter: Literal[";", ",", "\t", "|"] | None = Field(
        default=None,
        description="Field separator. Default: sniffed from the file (';', ',', tab or '|').",
    )
    encoding: str | None = Field(
        default=None,
        description="Text encoding, e.g. 'utf-8' or 'cp1252'. Default: a byte-order mark "
        "decides, else UTF-8 if the whole file decodes as UTF-8, else Windows-1252.",
    )
    columns: dict[ColumnKey, str | list[str]] = Field(
        default_factory=dict,
        description="Field → header text, overriding the built-in aliases for that field. "
        "'email' and 'phone' take a list of headers; an empty string ignores a field.",
    )
    default_payment_term_days: int = Field(
        default=30,
        ge=0,
        le=365,
        description="Days from invoice date to due date when the export has no due date "
        "(30: the statutory term of art. 6:119a BW when none was agreed).",
    )
    currency: Currency = Field(
        default=DEFAULT_CURRENCY,
        description="ISO 4217 currency of amounts when the export has no currency column.",
    )
    page_size: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="Invoices per page; each page is committed in one transaction.",
    )
    lock_suffix: str = Field(
        default=".lock",
        min_length=1,
        description="While <path><lock_suffix> exists the exporting program is still writing "
        "the file: the sync waits and tries again later instead of reading half an export.",
    )
    decimal: Literal["auto", ",", "."] = Field(
        default="auto",
        description="Decimal separator of amounts. 'auto' reads both forms and settles "
        "ambiguous ones such as '1.234' per column from the file's unambiguous amounts.",
    )
    date_order: Literal["auto", "dmy", "mdy"] = Field(
        default="auto",
        description="Order of day and month in non-ISO dates. 'auto' is day-month-year "
        "unless the file has month-day dates only (a day above 12 in second place).",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r}; use e.g. 'utf-8', 'utf-8-sig' or 'cp1252'"
            ) from None

    @field_validator("columns")
    @classmethod
    def _valid_columns(
        cls, value: dict[ColumnKey, str | list[str]]
    ) -> dict[ColumnKey, str | list[str]]:
        for key, headers in value.items():
            if isinstance(headers, list) and key not in MULTI_COLUMN:
                raise ValueError(
                    f"{key!r} takes one header; only {', '.join(sorted(MULTI_COLUMN))} take a list"
                )
            if key in REQUIRED and not headers:
                raise ValueError(f"{key!r} is required and cannot be switched off")
        return value

    @model_validator(mode="after")
    def _distinct_headers(self) -> CsvSettings:
        claimed: dict[str, str] = {}
        for key, headers in self.explicit_columns.items():
            for header in headers:
                if claimed.setdefault(normalise_header(header), key) != key:
                    raise ValueError(
                        f"columns: header {header!r} is mapped to both "
                        f"{claimed[normalise_header(header)]!r} and {key!r}"
                    )
        return self

    @property
    def explicit_columns(self) -> dict[str, list[str]]:
        """``columns`` as lists of headers; an empty list switches a field off."""
        return {
            key: [h for h in ([value] if isinstance(value, str) else value) if h.strip()]
            for key, value in self.columns.items()
        }


# -- file sniffing -----------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    """A BOM decides; otherwise UTF-8 if the whole file decodes as such, else Windows-1252.

    The whole file is checked (in chunks, at C speed) because a Windows-1252 export often
    has its first non-ASCII byte far from the start.
    """
    with path.open("rb") as handle:
        head = handle.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        if head.startswith(codecs.BOM_UTF8):
            bad = _undecodable(handle, "utf-8", start=len(codecs.BOM_UTF8))
            if bad is None:
                return "utf-8-sig"
            what = "is not UTF-8 despite its byte-order mark"
        else:
            if _undecodable(handle, "utf-8", start=0) is None:
                return "utf-8"
            bad = _undecodable(handle, "cp1252", start=0)
            if bad is None:
                return "cp1252"
            what = "is neither UTF-8 nor Windows-1252"
    raise FatalConnectorError(
        f"{path.name} {what} (byte 0x{bad[1]:02x} at offset {bad[0]}); set `encoding` for "
        "this connector"
    )


def _undecodable(handle: BinaryIO, encoding: str, *, start: int) -> tuple[int, int] | None:
    """Offset and value of the first byte from ``start`` on that ``encoding`` cannot decode,
    or ``None``."""
    handle.seek(start)
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = start
    try:
        while chunk := handle.read(1 << 20):
            decoder.decode(chunk)
            offset += len(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return offset + exc.start, exc.object[exc.start]
    return None


@dataclass(frozen=True)
class Column:
    """A column of the file: its position and its header as written (for messages)."""

    index: int
    header: str


@dataclass
class Layout:
    """Where the header is and which column holds which field, settled from a sample."""

    delimiter: str
    header_record: int
    """Index of the header among the file's records (blank lines count as records)."""
    width: int
    columns: dict[str, list[Column]]
    decimal: dict[str, str] = field(default_factory=dict)
    """Per amount field: ``","`` or ``"."``, settling values such as ``1.234``."""
    day_first: bool = True

    def one(self, key: str) -> Column | None:
        found = self.columns.get(key)
        return found[0] if found else None


def _sample_records(sample: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """Records of the sample with their physical start lines."""
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    end = 0
    try:
        for row in reader:
            records.append((end + 1, row))
            end = reader.line_num
    except csv.Error:
        pass  # a quote cut off by the sample's end
    return records


def _map_header(cells: Sequence[str], explicit: Mapping[str, list[str]]) -> dict[str, list[Column]]:
    """Which column holds which field: explicit mappings first, then aliases by rank."""
    found: dict[str, list[tuple[int, int, Column]]] = {}
    wanted = {normalise_header(h): key for key, headers in explicit.items() for h in headers}
    for index, cell in enumerate(cells):
        norm = normalise_header(cell)
        if norm in wanted:
            hit: tuple[str, int] | None = (wanted[norm], 0)
        else:
            hit = _ALIAS_INDEX.get(norm)
            if hit is not None and hit[0] in explicit:
                hit = None  # an explicitly mapped (or switched-off) field takes no alias
        if hit is not None:
            found.setdefault(hit[0], []).append((hit[1], index, Column(index, cell.strip())))
    return {
        key: [c for _, _, c in sorted(hits)][: None if key in MULTI_COLUMN else 1]
        for key, hits in found.items()
    }


def _complete(columns: Mapping[str, list[Column]]) -> bool:
    dated = "due_date" in columns or "issue_date" in columns
    return dated and all(key in columns for key in REQUIRED)


_DATA_LIKE = re.compile(r"@|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}|\d{4}-\d\d-\d\d|\d,\d\d\b")


def _looks_like_header(cells: Sequence[str]) -> bool:
    """No dates, amounts or e-mail addresses: a row safe to quote in an error message."""
    return not any(_DATA_LIKE.search(c) for c in cells)


class _Candidate(NamedTuple):
    """A row that may be the header, ranked by its first three fields."""

    complete: bool
    recognised: int
    split: bool
    delimiter: str
    position: int
    line: int
    cells: list[str]


def _missing_columns_error(
    name: str, shown: _Candidate | None, explicit: Mapping[str, list[str]]
) -> FatalConnectorError:
    columns = _map_header(shown.cells, explicit) if shown else {}
    wanted = [k for k in REQUIRED if k not in columns]
    if "due_date" not in columns and "issue_date" not in columns:
        wanted.append("due_date")
    expected = []
    for key in wanted:
        names = explicit.get(key) or ALIASES[key]
        hint = " (or an invoice date column to derive it from)" if key == "due_date" else ""
        expected.append(f"{key}{hint}: one of {', '.join(repr(n) for n in names)}")
    if shown is None:
        found = "the file has no non-empty rows"
    elif _looks_like_header(shown.cells):
        cells = ", ".join(repr(c.strip()) for c in shown.cells if c.strip())
        found = f"headers found on line {shown.line}: {cells}"
    else:
        found = (
            f"no header row in the first {HEADER_SCAN_ROWS} rows (line {shown.line} holds "
            "data: an export without a header row?)"
        )
    return FatalConnectorError(
        f"{name}: required columns not found; {found}. Expected "
        + "; ".join(expected)
        + ". Map other header names with `columns` in connectors.toml."
    )


def _amount_style(value: str) -> str | None:
    """``","`` or ``"."`` when a value can only be read one way, else ``None``."""
    text = _AMOUNT_NOISE.sub("", value).strip("-+()−")
    nl, en = _AMOUNT_NL.fullmatch(text), _AMOUNT_EN.fullmatch(text)
    if nl and not en:
        return ","
    if en and not nl:
        return "."
    return None


def _cells(body: list[list[str]], column: Column | None) -> Iterator[str]:
    if column is not None:
        yield from (row[column.index].strip() for row in body if len(row) > column.index)


def detect_layout(sample: str, name: str, settings: CsvSettings) -> Layout:
    """Settle delimiter, header row, column mapping, decimal style and date order.

    Each candidate delimiter splits the first rows; the split that yields a header row with
    the required columns (and, among those, the most recognised headers) wins.
    """
    explicit = settings.explicit_columns
    candidates: list[_Candidate] = []
    parsed: dict[str, list[tuple[int, list[str]]]] = {}
    for delimiter in (settings.delimiter,) if settings.delimiter else _DELIMITERS:
        parsed[delimiter] = _sample_records(sample, delimiter)
        for position, (line, cells) in enumerate(parsed[delimiter][:HEADER_SCAN_ROWS]):
            if any(c.strip() for c in cells):
                columns = _map_header(cells, explicit)
                candidates.append(
                    _Candidate(
                        _complete(columns),
                        len(columns),
                        len(cells) > 1,
                        delimiter,
                        position,
                        line,
                        cells,
                    )
                )
    if not candidates:
        raise _missing_columns_error(name, None, explicit)
    best = max(candidates, key=lambda c: c[:3])  # the first of equals: the earliest row
    if not best.complete:
        if not best.recognised:  # show the first row, split as finely as any delimiter can
            first_line = min(c.line for c in candidates)
            best = max((c for c in candidates if c.line == first_line), key=lambda c: len(c.cells))
        raise _missing_columns_error(name, best, explicit)
    columns = _map_header(best.cells, explicit)
    for key, headers in explicit.items():
        if headers and key not in columns:
            found = ", ".join(repr(c.strip()) for c in best.cells if c.strip())
            raise FatalConnectorError(
                f"{name}: columns.{key} = {headers!r} is not a header on line {best.line}; "
                f"headers found: {found}"
            )
    layout = Layout(best.delimiter, best.position, len(best.cells), columns)
    body = [row for _, row in parsed[best.delimiter][best.position + 1 :]]
    for key in ("total", "open_amount"):
        if settings.decimal != "auto":
            layout.decimal[key] = settings.decimal
        else:
            votes = [_amount_style(text) for text in _cells(body, layout.one(key))]
            layout.decimal[key] = "." if votes.count(".") > votes.count(",") else ","
    if settings.date_order != "auto":
        layout.day_first = settings.date_order == "dmy"
    else:
        day_first = month_first = False
        for key in ("issue_date", "due_date"):
            for text in _cells(body, layout.one(key)):
                if match := _DATE_DMY.fullmatch(text):
                    day_first |= int(match[1]) > 12
                    month_first |= int(match[2]) > 12
        layout.day_first = day_first or not month_first
    return layout


# -- values --------------------------------------------------------------------------------


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
        match = _DATE_DMY.fullmatch(text)
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
        found = _amount_style(cleaned)
        if found is None and (_AMOUNT_NL.fullmatch(cleaned) or _AMOUNT_EN.fullmatch(cleaned)):
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


def _country(text: str) -> str:
    if len(text) == 2 and text.isalpha():
        return text.upper()
    code = _country_codes().get(normalise_header(text))
    if code is None:
        raise CellError(f"{text!r} is not a country name or ISO 3166 code")
    return code


def _language(text: str) -> Language:
    """Dutch variants are Dutch; any other language gets English, which a foreign debtor more
    likely reads than Dutch."""
    norm = normalise_header(text)
    return Language.NL if not norm or norm in _DUTCH else Language.EN


# -- the connector ---------------------------------------------------------------------------


@dataclass
class _Stats:
    rows: int = 0
    skipped: int = 0
    duplicates: int = 0
    unknown_kinds: int = 0
    contradicting: set[str] = field(default_factory=set)


_TRANSIENT_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE, errno.EIO}
)


class CsvConnector(Connector[CsvSettings]):
    """Reads one open-items export as one full snapshot."""

    type_name: ClassVar[str] = "csv"
    Settings: ClassVar[type[ConnectorSettings]] = CsvSettings

    @property
    def path(self) -> Path:
        path = self.settings.path.expanduser()
        return path if path.is_absolute() else self.context.config_dir / path

    async def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        path = self.path.resolve()
        if Path(f"{path}{self.settings.lock_suffix}").exists():
            raise RetryableConnectorError(f"{path.name} is still being written (lock file)")
        if not path.is_file():
            raise FatalConnectorError(f"CSV file not found: {path}")
        reader: _FileReader | None = None
        try:
            encoding = self.settings.encoding or detect_encoding(path)
            with path.open(encoding=encoding, newline="") as handle:
                sample = handle.read(SAMPLE_CHARS)
                if handle.read(1):  # cut to whole lines: half an amount would skew the votes
                    sample = sample[: sample.rfind("\n") + 1]
                layout = detect_layout(sample, path.name, self.settings)
            reader = _FileReader(self, path.name, layout)
            with path.open(encoding=encoding, newline="") as handle:
                for page in reader.pages(handle):
                    yield page
        except UnicodeDecodeError as exc:
            raise FatalConnectorError(
                f"{path.name} cannot be read as {encoding} ({exc.reason}); check `encoding` "
                "for this connector"
            ) from None
        except csv.Error as exc:
            raise FatalConnectorError(
                f"{path.name}:{reader.line if reader else 1}: unreadable CSV ({exc}); nothing "
                "was closed"
            ) from None
        except OSError as exc:
            if exc.errno in _TRANSIENT_ERRNOS:  # a busy or briefly lost (network) share
                raise RetryableConnectorError(f"cannot read {path} now: {exc.strerror}") from None
            raise FatalConnectorError(f"cannot read {path}: {exc.strerror}") from None


class _FileReader:
    """One pass over one file: rows to records, a page at a time.

    Every row is padded with one extra empty cell, and a field without a column reads that
    cell, so one ``itemgetter`` call fetches all fields of a row.
    """

    def __init__(self, connector: CsvConnector, name: str, layout: Layout) -> None:
        self.settings = connector.settings
        self.log = connector.context.logger
        self.instance = connector.instance
        self.name = name
        self.layout = layout
        self.values = Values(
            day_first=layout.day_first,
            decimal=layout.decimal,
            strict=self.settings.decimal != "auto",
        )
        self.term = timedelta(days=self.settings.default_payment_term_days)
        self.builder = RecordBuilder()
        self.stats = _Stats()
        self.debtors: dict[str, int] = {}
        """Debtor id → hash of the debtor cells it was built from (first row wins)."""
        self.invoices: dict[str, tuple[int, int]] = {}
        """Invoice number → (line, hash of its cells), to tell repeats from conflicts."""
        self.group: list[str] | None = None
        """The current debtor group header row of a report-style export."""
        self.group_line = 0
        self.line = 1
        """Physical line where the next record starts: where a csv error is."""
        self.currencies: dict[str, str] = {"": self.settings.currency}
        self.methods: dict[str, bool] = {}
        self.previous = connector.previous
        self.salt = hashlib.blake2b(
            repr((self.settings.model_dump(mode="json", exclude={"page_size"}), layout)).encode(),
            digest_size=16,
        )
        """What a row means depends on the settings and the layout: both salt the row's
        raw fingerprint (connectors.base.Previous), so a change to either rebuilds it."""

        def at(key: str) -> int:
            column = layout.one(key)
            return column.index if column else layout.width

        self.debtor_at = at("debtor_id")
        self.date_at = [at("issue_date"), at("due_date")]
        self.debtor_cells = itemgetter(*(at(key) for key in DEBTOR_FIELDS))
        self.contact_columns = [
            column.index for key in ("email", "phone") for column in layout.columns.get(key, ())
        ]
        self.invoice_cells = itemgetter(*(at(key) for key in INVOICE_FIELDS))

    def header(self, key: str) -> str:
        column = self.layout.one(key)
        assert column is not None  # only asked for fields that have a column
        return column.header

    def ref(self, line: int) -> str:
        return f"{self.name}:{line}"

    def pages(self, handle: io.TextIOBase) -> Iterator[Page]:
        reader = csv.reader(handle, delimiter=self.layout.delimiter)
        builder, page_size = self.builder, self.settings.page_size
        header_record, width = self.layout.header_record, self.layout.width
        number_at = self.layout.columns["number"][0].index
        header_number = self.layout.columns["number"][0].header
        for record, row in enumerate(reader):
            line, end = self.line, reader.line_num
            self.line = end + 1
            if record <= header_record:
                continue
            if end > line:
                self.check_quotes(line, end, row)
            self.stats.rows += 1
            if len(row) != width:
                if len(row) < width:
                    row += [""] * (width - len(row))
                elif any(cell.strip() for cell in row[width:]):
                    self.overlong(line, row[number_at].strip(), len(row))
                    continue
                else:
                    del row[width:]
            row.append("")
            number = row[number_at].strip()
            if number and number != header_number:
                self.invoice_row(line, row, number)
            else:
                self.other_row(line, row, number)
            if len(builder.invoices) >= page_size:
                yield builder.page(cursor=None)
        yield builder.page(cursor=None, snapshot_complete=True)
        self.report()

    def check_quotes(self, line: int, end: int, row: list[str]) -> None:
        """A stray opening quote swallows the lines up to the next quote into one field.
        Those rows would vanish and their invoices be closed as paid, so the file is
        refused instead; a genuine multi-line cell (an address) has few separators."""
        limit = max(2, self.layout.width // 2)
        if any("\n" in cell and cell.count(self.layout.delimiter) >= limit for cell in row):
            raise FatalConnectorError(
                f"{self.name}:{line}: a quote opened on line {line} closes only on line {end}, "
                "taking the lines in between into one field; fix the quoting (nothing was "
                "closed)"
            )

    def overlong(self, line: int, number: str, fields: int) -> None:
        self.builder.reject(
            "row",
            self.ref(line),
            f"the row has {fields} fields but the header {self.layout.width} "
            f"(an unquoted {self.layout.delimiter!r} in a value?)",
            invoice_id=number or None,
        )

    def other_row(self, line: int, row: list[str], number: str) -> None:
        """A row without an invoice number: blank, repeated header, total, group header,
        label, or an invoice that lost its number (it still has a date)."""
        first = next((cell.strip() for cell in row if cell.strip()), "")
        if number or not first or _TOTAL_ROW.match(first):
            self.stats.skipped += 1
        elif any(row[i].strip() for i in self.date_at):
            self.builder.reject("row", self.ref(line), f"column {self.header('number')!r} is empty")
        elif row[self.debtor_at].strip():
            self.group, self.group_line = row, line
        else:
            self.stats.skipped += 1

    def invoice_row(self, line: int, row: list[str], number: str) -> None:
        debtor_line, debtor_row = line, row
        if self.group is not None and not row[self.debtor_at].strip():
            debtor_line = self.group_line
            debtor_row = [c if c.strip() else g for c, g in zip(row, self.group, strict=True)]
        debtor = self.debtor_cells(debtor_row)
        fields = self.invoice_cells(row)
        key = hash((debtor[0], fields))
        first = self.invoices.setdefault(number, (line, key))
        if first[0] != line:
            if first[1] == key:
                self.stats.duplicates += 1
            else:
                self.builder.reject(
                    "row",
                    self.ref(line),
                    f"invoice number {number!r} is also on line {first[0]} with different "
                    f"values; line {first[0]} is used",
                    invoice_id=number,
                )
            return
        problems: list[str] = []
        debtor_id = self.debtor(debtor_line, debtor_row, debtor, problems)
        raw = self.raw((debtor_id, fields))
        if not problems and self.previous.invoices.get(number) == raw:
            self.builder.unchanged("invoice", number)
            return
        data = self.invoice_data(fields, debtor_id, problems)
        if not problems:
            self.builder.invoice(data, ref=self.ref(line), raw=raw)
        elif _TOTAL_ROW.match(number):  # "Totaal" in the invoice number column
            self.stats.skipped += 1
            del self.invoices[number]
        else:
            self.builder.reject("row", self.ref(line), "; ".join(problems), invoice_id=number)

    def debtor(self, line: int, row: list[str], cells: tuple[str, ...], problems: list[str]) -> str:
        """The row's debtor id; the debtor is built from the first row that names it."""
        debtor_id = cells[0].strip()
        if not debtor_id or len(debtor_id) > MAX_ID_LENGTH:
            problems.append(self.id_problem("debtor_id", debtor_id))
            return ""
        known = self.debtors.get(debtor_id)
        if known is None:
            self.debtors[debtor_id] = hash(cells)
            raw = self.raw((cells, tuple(row[i] for i in self.contact_columns)))
            if self.previous.debtors.get(debtor_id) == raw:
                self.builder.unchanged("debtor", debtor_id)
            else:
                fields = dict(zip(DEBTOR_FIELDS, cells, strict=True))
                self.build_debtor(line, row, debtor_id, fields, raw)
        elif known != hash(cells):
            self.stats.contradicting.add(debtor_id)
        return debtor_id

    def id_problem(self, key: str, value: str) -> str:
        if value:
            return f"column {self.header(key)!r} is longer than {MAX_ID_LENGTH} characters"
        return f"column {self.header(key)!r} is empty"

    def raw(self, cells: object) -> bytes:
        """The raw fingerprint of a record's cells (see ``salt``)."""
        digest = self.salt.copy()
        digest.update(repr(cells).encode())
        return digest.digest()

    def build_debtor(
        self, line: int, row: list[str], debtor_id: str, cells: dict[str, str], raw: bytes
    ) -> None:
        one = {key: value.strip() for key, value in cells.items()}
        ref = self.ref(line)
        kind = _KINDS.get(normalise_header(one["kind"]))
        if kind is None:
            self.stats.unknown_kinds += bool(one["kind"])
            kind = DebtorKind.BUSINESS if one["kvk"] or one["vat"] else DebtorKind.UNKNOWN
        columns = self.layout.columns
        emails = [
            email
            for column in columns.get("email", ())
            for email in _SPLIT_EMAILS.split(row[column.index])
            if email
        ]
        phones = [
            phone.strip()
            for column in columns.get("phone", ())
            for phone in _SPLIT_PHONES.split(row[column.index])
            if phone.strip()
        ]
        self.builder.debtor(
            {
                "external_id": debtor_id,
                "name": one["name"] or debtor_id,
                "kind": kind,
                "emails": list(dict.fromkeys(emails)),
                "phones": list(dict.fromkeys(phones)),
                "language": _language(one["language"]),
                "address": self.address(ref, one),
                "kvk": one["kvk"] or None,
                "vat": one["vat"] or None,
                "iban": one["iban"] or None,
            },
            ref=ref,
            raw=raw,
        )

    def address(self, ref: str, one: Mapping[str, str]) -> Address | None:
        """The debtor's address, or ``None`` with a "dropped" reject when it is unusable: a
        bad postcode must not cost the debtor its e-mail reminders."""
        street = " ".join(part for part in (one["address"], one["house_number"]) if part)
        postcode, city, country = one["postcode"], one["city"], one["country"]
        if not (street or postcode or city or country):
            return None
        try:
            code = _country(country) if country else "NL"
            return Address(
                lines=(street,) if street else (), postcode=postcode, city=city, country=code
            )
        except CellError as exc:
            reason = f"column {self.header('country')!r}: {exc}"
        except ValidationError:  # only the postcode check is left once the country is a code
            reason = f"column {self.header('postcode')!r}: not a Dutch postcode (1234 AB)"
        self.builder.reject("debtor", ref, f"{reason}; the address was dropped", dropped=True)
        return None

    def problem(self, key: str, reason: str) -> str:
        return f"column {self.header(key)!r}: {reason}"

    def direct_debit(self, method: str) -> bool:
        found = self.methods.get(method)
        if found is None:
            norm = normalise_header(method)
            found = self.methods[method] = any(word in norm for word in _DIRECT_DEBIT)
        return found

    def currency(self, text: str, problems: list[str]) -> str:
        """The ISO code of a currency cell (``€`` is EUR); validated once per spelling."""
        try:
            code = _CURRENCY.validate_python("EUR" if text in ("€", "EURO", "Euro") else text)
        except ValidationError:
            problems.append(self.problem("currency", f"{text!r} is not an ISO 4217 currency code"))
            return self.settings.currency
        self.currencies[text] = code
        return code

    def invoice_data(
        self, fields: tuple[str, ...], debtor_id: str, problems: list[str]
    ) -> dict[str, Any]:
        """The Invoice mapping of one row; what is wrong with it goes to ``problems``."""
        number, issued_text, due_text, total_text, open_text, currency_text, reference, url = map(
            str.strip, fields[:-1]
        )
        values = self.values
        issued = values.day(issued_text) if issued_text else None
        due = values.day(due_text) if due_text else None
        open_amount = values.amount(open_text, "open_amount") if open_text else None
        total = values.amount(total_text, "total") if total_text else open_amount
        currency = self.currencies.get(currency_text) or self.currency(currency_text, problems)
        if isinstance(issued, str):
            problems.append(self.problem("issue_date", issued))
        if isinstance(due, str):
            problems.append(self.problem("due_date", due))
        if isinstance(issued, str) or isinstance(due, str):
            pass
        elif due is not None:
            issued = issued or due - self.term
        elif issued is not None:
            due = issued + self.term  # no due date: the payment term applies
        else:
            key = "due_date" if self.layout.one("due_date") else "issue_date"
            problems.append(f"column {self.header(key)!r} is empty")
        if isinstance(open_amount, str):
            problems.append(self.problem("open_amount", open_amount))
        elif open_amount is None:
            problems.append(f"column {self.header('open_amount')!r} is empty")
        if isinstance(total, str) and total_text:
            problems.append(self.problem("total", total))
        if len(number) > MAX_ID_LENGTH:
            problems.append(self.id_problem("number", number))
        if len(reference) > MAX_ID_LENGTH:
            problems.append(self.id_problem("payment_reference", reference))
        return {
            "external_id": number,
            "number": number,
            "debtor_id": debtor_id,
            "issue_date": issued,
            "due_date": due,
            "total": {"amount": total, "currency": currency},
            "open_amount": {"amount": open_amount, "currency": currency},
            "payment_reference": reference or None,
            "payment_url": url or None,
            "direct_debit": self.direct_debit(fields[-1]),
        }

    def report(self) -> None:
        """One summary line per file; ids only, never names or amounts."""
        stats = self.stats
        self.log.info(
            "csv %s: %s: %d row(s) after the header, %d skipped (blank, total, label or "
            "repeated header rows), %d identical repeat(s) ignored",
            self.instance,
            self.name,
            stats.rows,
            stats.skipped,
            stats.duplicates,
        )
        if stats.contradicting:
            self.log.warning(
                "csv %s: %d debtor(s) have different details on later rows; the first row "
                "of each was used (e.g. %s)",
                self.instance,
                len(stats.contradicting),
                ", ".join(sorted(stats.contradicting)[:5]),
            )
        if stats.unknown_kinds:
            self.log.warning(
                "csv %s: %d debtor(s) have an unrecognised value in column %r; their kind "
                "was derived from KvK and VAT numbers instead",
                self.instance,
                stats.unknown_kinds,
                self.header("kind"),
            )


@hookimpl
def debsync_register_connectors(register: Callable[[type[Connector[Any]]], None]) -> None:
    register(CsvConnector)
