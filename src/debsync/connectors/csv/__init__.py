"""The built-in ``csv`` connector: open-items exports ("openstaande posten") as Dutch
bookkeeping programs write them.

One file is one full snapshot. The connector streams it a page at a time and tolerates what
real exports contain: ``;``, ``,`` or tab separators, UTF-8 with or without BOM or Windows-1252,
decimal commas with thousands dots, Dutch and ISO dates, Dutch and English header names, and
report-style layouts (a title block, debtor group headers, total rows, blank lines). A row it
cannot use becomes a :class:`~debsync.connectors.base.Reject` located by ``file:line``; the
other rows sync. The full reference is ``docs/connectors/csv.md``.

The package is the plugin module (``debsync.connectors.csv`` in ``DEFAULT_PLUGINS``); its
modules are the steps of reading an export: ``aliases`` (which header means which field),
``settings``, ``sniffing`` (encoding and layout), ``values`` (Dutch cells) and ``reader``
(rows to pages).
"""

from __future__ import annotations

import csv
import errno
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from debsync import hookimpl
from debsync.connectors.base import JSON, Connector, ConnectorSettings, Page
from debsync.connectors.csv.aliases import ALIASES, normalise_header
from debsync.connectors.csv.reader import FileReader
from debsync.connectors.csv.settings import CsvSettings
from debsync.connectors.csv.sniffing import (
    SAMPLE_CHARS,
    SAMPLE_ROWS,
    detect_encoding,
    detect_layout,
    layout_of,
)
from debsync.connectors.csv.values import Values
from debsync.connectors.csv.workbook import Workbook, sniff_binary
from debsync.errors import FatalConnectorError, RetryableConnectorError

__all__ = [
    "ALIASES",
    "CsvConnector",
    "CsvSettings",
    "Values",
    "debsync_register_connectors",
    "detect_encoding",
    "detect_layout",
    "normalise_header",
]

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
        reader: FileReader | None = None
        try:
            if sniff_binary(path) == "xlsx":
                for page in self._workbook(path):
                    yield page
                return
            encoding = self.settings.encoding or detect_encoding(path)
            with path.open(encoding=encoding, newline="") as handle:
                sample = handle.read(SAMPLE_CHARS)
                if handle.read(1):  # cut to whole lines: half an amount would skew the votes
                    sample = sample[: sample.rfind("\n") + 1]
                layout = detect_layout(sample, path.name, self.settings)
            reader = FileReader(self, path.name, layout)
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

    def _workbook(self, path: Path) -> Iterator[Page]:
        """An .xlsx export: the sheet's first rows settle the layout as a CSV sample does,
        then its rows go through the same reader."""
        book = Workbook(path, self.settings.sheet)
        try:
            sample = list(itertools.islice(book.rows(), SAMPLE_ROWS))
            layout = layout_of({"\t": sample}, path.name, self.settings)
            reader = FileReader(self, path.name, layout, book.sheet)
            yield from reader.sheet_pages(book.rows(layout.width))
        finally:
            book.close()


@hookimpl
def debsync_register_connectors(register: Callable[[type[Connector[Any]]], None]) -> None:
    register(CsvConnector)
