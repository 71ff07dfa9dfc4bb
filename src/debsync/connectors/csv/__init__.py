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
import hashlib
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from debsync import hookimpl
from debsync.clock import local_date
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
    capabilities: ClassVar[frozenset[str]] = frozenset({"digest"})
    Settings: ClassVar[type[ConnectorSettings]] = CsvSettings

    @property
    def path(self) -> Path:
        path = self.settings.path.expanduser()
        return path if path.is_absolute() else self.context.config_dir / path

    async def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        """The export's pages, the last with the export's digest as its cursor; when ``cursor``
        (the last complete snapshot's, capability ``"digest"``) names the same digest, one
        empty complete page at that cursor instead: the engine repeats that snapshot."""
        path = self.path.resolve()
        if Path(f"{path}{self.settings.lock_suffix}").exists():
            raise RetryableConnectorError(f"{path.name} is still being written (lock file)")
        if not path.is_file():
            raise FatalConnectorError(f"CSV file not found: {path}")
        try:
            before = path.stat()
            mark: JSON = {"digest": self._digest(path)}
        except OSError as exc:
            raise _os_error(path, exc) from None
        if cursor == mark:
            yield Page(cursor=mark, snapshot_complete=True)
            return
        for page in self._pages(path):
            if page.snapshot_complete and not _changed(path, before):
                page.cursor = mark  # else written to while read: the digest may be of others
            yield page

    def _digest(self, path: Path) -> str:
        """The export's bytes with what else decides the records read from them: the
        settings and today's date (a prior step dated in the future is refused until then)."""
        salt = repr(
            (
                self.settings.model_dump(mode="json", exclude={"page_size"}),
                local_date(self.context.clock()).isoformat(),
            )
        )
        digest = hashlib.blake2b(salt.encode(), digest_size=16)
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def _pages(self, path: Path) -> Iterator[Page]:
        reader: FileReader | None = None
        try:
            if sniff_binary(path) == "xlsx":
                yield from self._workbook(path)
                return
            encoding = self.settings.encoding or detect_encoding(path)
            with path.open(encoding=encoding, newline="") as handle:
                sample = handle.read(SAMPLE_CHARS)
                if handle.read(1):  # cut to whole lines: half an amount would skew the votes
                    sample = sample[: sample.rfind("\n") + 1]
                layout = detect_layout(sample, path.name, self.settings)
            reader = FileReader(self, path.name, layout)
            with path.open(encoding=encoding, newline="") as handle:
                yield from reader.pages(handle)
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
            raise _os_error(path, exc) from None

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


def _os_error(path: Path, exc: OSError) -> RetryableConnectorError | FatalConnectorError:
    if exc.errno in _TRANSIENT_ERRNOS:  # a busy or briefly lost (network) share
        return RetryableConnectorError(f"cannot read {path} now: {exc.strerror}")
    return FatalConnectorError(f"cannot read {path}: {exc.strerror}")


def _changed(path: Path, before: os.stat_result) -> bool:
    """Whether the file was replaced or written to since ``before``."""
    try:
        now = path.stat()
    except OSError:
        return True
    return (now.st_ino, now.st_size, now.st_mtime_ns) != (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


@hookimpl
def debsync_register_connectors(register: Callable[[type[Connector[Any]]], None]) -> None:
    register(CsvConnector)
