"""Writing small exports the way Dutch programs do, and running the csv connector on them."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debsync.config import ConnectorInstance
from debsync.connectors.base import ConnectorContext, Page, Reject, SyncResult
from debsync.connectors.csv import CsvConnector, CsvSettings
from debsync.model import Debtor, Invoice
from debsync.store import Store
from debsync.sync import SyncEngine

Rows = Sequence[Sequence[str]]

COLUMNS = (
    "Relatiecode",
    "Naam",
    "Soort",
    "E-mail",
    "Telefoon",
    "Adres",
    "Postcode",
    "Plaats",
    "KvK-nummer",
    "Taal",
    "Factuurnummer",
    "Factuurdatum",
    "Vervaldatum",
    "Bedrag",
    "Openstaand",
    "Valuta",
    "Betalingskenmerk",
)
"""The header of the open-items exports the tests write, in the order Dutch programs use."""


def export_header(*without: str) -> list[str]:
    """The header without the named columns (a program that exports fewer)."""
    return [column for column in COLUMNS if column not in without]


def write(
    path: Path,
    rows: Rows,
    *,
    delimiter: str = ";",
    encoding: str = "utf-8-sig",
    newline: str = "\r\n",
) -> Path:
    """Write rows as CSV bytes; quoting is what Excel does: only where needed."""
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator=newline).writerows(rows)
    path.write_bytes(text.getvalue().encode(encoding))
    return path


def connector(path: Path, **settings: Any) -> CsvConnector:
    """A connector for ``path``, configured as if connectors.toml sat next to it."""
    config = CsvSettings.model_validate({"path": path.name, **settings})
    return CsvConnector("books", config, ConnectorContext("books", path.parent))


@dataclass
class Read:
    """What one fetch produced, keyed for assertions."""

    pages: list[Page]
    invoices: dict[str, Invoice] = field(default_factory=dict)
    debtors: dict[str, Debtor] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)


def read(path: Path, **settings: Any) -> Read:
    async def collect() -> list[Page]:
        return [page async for page in connector(path, **settings).fetch(None)]

    result = Read(asyncio.run(collect()))
    for page in result.pages:
        result.invoices.update((i.external_id, i) for i in page.invoices)
        for debtor in page.debtors:
            assert debtor.external_id not in result.debtors, "a debtor is sent once per file"
            result.debtors[debtor.external_id] = debtor
        result.rejects.extend(page.rejects)
    return result


def sync(store: Store, clock: Any, path: Path, **settings: Any) -> SyncResult:
    """One run through the real engine, as ``debsync sync`` does it."""
    conn = connector(path, **settings)
    instance = ConnectorInstance("books", "csv", CsvConnector, conn.settings)
    return asyncio.run(SyncEngine(store, clock=clock).run(instance, conn))
