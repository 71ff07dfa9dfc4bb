"""Spreadsheets among the exports: an ``.xlsx`` workbook read as rows of text cells, and the
other binary files people save an export as, named by their first bytes.

A cell becomes the text the CSV reader would have seen, so both go through the same layout
detection, report-row handling and value parsing: a date cell is ISO ``2026-11-01``, a number
is its decimal digits (never float arithmetic: ``Decimal(str(value))``), with a point.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from debsync.errors import FatalConnectorError

_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAGIC = (
    (_OLE2, "a legacy Excel workbook (.xls) or another Office file"),
    (b"%PDF", "a PDF document (a printed report rather than an export)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"{\\rtf", "an RTF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)
_ODS = b"application/vnd.oasis.opendocument.spreadsheet"
_CONTROL = frozenset(range(32)) - {9, 10, 12, 13} | {127}
SAVE_AS = "save it from the program as CSV or .xlsx (Excel workbook)"


def sniff_binary(path: Path) -> str | None:
    """``"xlsx"`` for an Excel workbook, ``None`` for a text file (CSV), or a
    :class:`FatalConnectorError` naming what the file looks like."""
    with path.open("rb") as handle:
        head = handle.read(1024)
    if head.startswith(_ZIP):
        return _zip_kind(path)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise FatalConnectorError(f"{path.name} is {what}, not a CSV export; {SAVE_AS}")
    if sum(map(_CONTROL.__contains__, head)) * 10 > len(head) and not head.startswith(
        (b"\xff\xfe", b"\xfe\xff")  # UTF-16 text has a NUL in every other byte
    ):  # one control character in ten: no text export (a stray NUL in a cell is fine)
        raise FatalConnectorError(f"{path.name} is a binary file, not a CSV export; {SAVE_AS}")
    return None


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype") if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError) as exc:
        raise FatalConnectorError(f"{path.name} is a damaged ZIP archive ({exc})") from None
    if "xl/workbook.xml" in names:
        return "xlsx"
    if mimetype.startswith(_ODS):
        what = "an OpenDocument spreadsheet (.ods)"
    elif "word/document.xml" in names:
        what = "a Word document (.docx)"
    else:
        what = "a ZIP archive"
    raise FatalConnectorError(f"{path.name} is {what}, not a CSV export; {SAVE_AS}")


def cell_text(value: Any) -> str:
    """The text of one cell as a CSV export would hold it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
        if number == number.to_integral_value():
            return str(number.quantize(Decimal(1)))  # 10001.0 is the code 10001
        text = format(number.normalize(), "f")
        if len(text.rsplit(".", 1)[1]) == 3:
            text += "0"  # "100.125" would also read as the Dutch 100.125 (thousands)
        return text
    return str(value)


@dataclass(frozen=True)
class Sheet:
    """The sheet read: its name, for references such as ``Sheet1!C7``."""

    title: str

    def cell(self, row: int, column: int) -> str:
        """The Excel reference of a 0-based column in a 1-based row."""
        return f"{self.title}!{get_column_letter(column + 1)}{row}"


class Workbook:
    """One ``.xlsx`` file opened read-only; :meth:`rows` streams one sheet's rows."""

    def __init__(self, path: Path, sheet: str | None) -> None:
        try:
            self._book = load_workbook(path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise FatalConnectorError(
                f"{path.name} cannot be read as an Excel workbook ({exc})"
            ) from None
        names = self._book.sheetnames
        if sheet is not None and sheet not in names:
            self._book.close()
            raise FatalConnectorError(
                f"{path.name} has no sheet {sheet!r}; its sheets: "
                + ", ".join(repr(n) for n in names)
            )
        self._sheet = self._book[sheet] if sheet is not None else self._book.worksheets[0]
        self.sheet = Sheet(self._sheet.title)

    def rows(self, width: int | None = None) -> Iterator[tuple[int, list[str]]]:
        """(row number, cell texts) for every row, blank ones included; ``width`` cells each
        when given (the header's width), else as many as the row has."""
        for number, values in enumerate(
            self._sheet.iter_rows(values_only=True, max_col=width), start=1
        ):
            yield number, [cell_text(v) for v in values]

    def close(self) -> None:
        self._book.close()
