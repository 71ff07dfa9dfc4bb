"""Settling a file's encoding and layout before it is read: separator, header row, which
column holds which field, decimal style and date order."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from debsync.connectors.csv.aliases import (
    ALIAS_INDEX,
    ALIASES,
    EITHER,
    MULTI_COLUMN,
    REQUIRED,
    normalise_header,
)
from debsync.connectors.csv.settings import CsvSettings
from debsync.connectors.csv.values import DATE_DMY, amount_style
from debsync.errors import FatalConnectorError

HEADER_SCAN_ROWS = 50
"""How far into the file the header row may be (report exports put a title block first)."""
SAMPLE_CHARS = 64 * 1024
SAMPLE_ROWS = 2000
"""A workbook's first rows that settle its layout, as the first 64 KiB do for a CSV file."""
_DELIMITERS = (";", ",", "\t", "|")


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
            hit = ALIAS_INDEX.get(norm)
            if hit is not None and hit[0] in explicit:
                hit = None  # an explicitly mapped (or switched-off) field takes no alias
        if hit is not None:
            found.setdefault(hit[0], []).append((hit[1], index, Column(index, cell.strip())))
    columns = {
        key: [c for _, _, c in sorted(hits)][: None if key in MULTI_COLUMN else 1]
        for key, hits in found.items()
    }
    if "debtor_id" not in columns and "debtor_id" not in explicit:
        either = [
            Column(i, cell.strip())
            for i, cell in enumerate(cells)
            if normalise_header(cell) in EITHER and normalise_header(cell) not in wanted
        ]
        names = {c.index for c in columns.get("name", ())}
        spare = [c for c in either if c.index not in names] or either
        if spare:  # Twinfield's "Debiteur" next to "Naam"; the values settle it (resolve_either)
            columns["debtor_id"] = spare[:1]
    return columns


_CODE = re.compile(r"(?=\S*\d)\S{1,40}")
"""A debtor code: one word with a digit in it (``10002``, ``D-17``, ``ACME01``)."""


def _codes(cells: Iterable[str]) -> bool:
    """Whether most non-empty values of a column are codes rather than names."""
    values = [c for c in cells if c]
    return sum(bool(_CODE.fullmatch(v)) for v in values) * 2 > len(values)


def resolve_either(
    name: str, columns: dict[str, list[Column]], body: list[list[str]]
) -> dict[str, list[Column]]:
    """Settle a header that may be the debtor's code or its name (:data:`aliases.EITHER`)
    by the column's values: codes make it the id; names make it the name, and then the file
    must have another column with the codes."""
    debtor = columns["debtor_id"][0]
    if normalise_header(debtor.header) not in EITHER:
        return columns
    named = columns.get("name", [])
    if _codes(_cells(body, debtor)):
        if named and named[0].index == debtor.index:
            del columns["name"]  # the code is all there is: it names the debtor too
        return columns
    if named and named[0].index != debtor.index and _codes(_cells(body, named[0])):
        columns["debtor_id"], columns["name"] = named, [debtor]
        return columns
    raise FatalConnectorError(
        f"{name}: column {debtor.header!r} holds names, not debtor codes, and no other column "
        f"holds the codes; map the code column with `columns.debtor_id` (one of "
        f"{', '.join(repr(n) for n in ALIASES['debtor_id'][:6])}, …)"
    )


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


def _cells(body: list[list[str]], column: Column | None) -> Iterator[str]:
    if column is not None:
        yield from (row[column.index].strip() for row in body if len(row) > column.index)


def detect_layout(sample: str, name: str, settings: CsvSettings) -> Layout:
    """Settle delimiter, header row, column mapping, decimal style and date order.

    Each candidate delimiter splits the first rows; the split that yields a header row with
    the required columns (and, among those, the most recognised headers) wins.
    """
    delimiters = (settings.delimiter,) if settings.delimiter else _DELIMITERS
    return layout_of({d: _sample_records(sample, d) for d in delimiters}, name, settings)


def layout_of(
    parsed: Mapping[str, list[tuple[int, list[str]]]], name: str, settings: CsvSettings
) -> Layout:
    """The layout from the first records of a file as each delimiter splits them (one
    "delimiter" for a spreadsheet, whose rows come split): records are (line, cells)."""
    explicit = settings.explicit_columns
    candidates: list[_Candidate] = []
    for delimiter, records in parsed.items():
        for position, (line, cells) in enumerate(records[:HEADER_SCAN_ROWS]):
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
    body = [row for _, row in parsed[best.delimiter][best.position + 1 :]]
    columns = resolve_either(name, columns, body)
    layout = Layout(best.delimiter, best.position, len(best.cells), columns)
    for key in ("total", "open_amount"):
        if settings.decimal != "auto":
            layout.decimal[key] = settings.decimal
        else:
            votes = [amount_style(text) for text in _cells(body, layout.one(key))]
            layout.decimal[key] = "." if votes.count(".") > votes.count(",") else ","
    if settings.date_order != "auto":
        layout.day_first = settings.date_order == "dmy"
    else:
        day_first = month_first = False
        for key in ("issue_date", "due_date"):
            for text in _cells(body, layout.one(key)):
                if match := DATE_DMY.fullmatch(text):
                    day_first |= int(match[1]) > 12
                    month_first |= int(match[2]) > 12
        layout.day_first = day_first or not month_first
    return layout
