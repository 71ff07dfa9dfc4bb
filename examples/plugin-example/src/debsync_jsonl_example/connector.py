"""Open items from a JSON-lines export: one debtor or invoice per line.

One file is one full snapshot. A bad line becomes a located reject (``file:line``) and the
other lines sync; an invoice whose line is broken but whose id can be read is reported with
that id, so debsync does not mistake it for a paid invoice.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from debsync.connectors.base import (
    JSON,
    Connector,
    ConnectorSettings,
    Page,
    RecordBuilder,
)
from debsync.errors import FatalConnectorError, RetryableConnectorError


class JsonLinesSettings(ConnectorSettings):
    path: Path = Field(description="The export file; relative paths start at connectors.toml.")
    page_size: int = Field(default=1000, gt=0, description="Invoices per committed page.")
    lock_suffix: str = Field(
        default=".lock",
        description="While <path><lock_suffix> exists the export is being written: retry later.",
    )


def _amount(value: Any) -> Any:
    """Money arrives as a string; a JSON number with a fraction would be a float."""
    if isinstance(value, float):
        raise ValueError('amounts must be strings such as "121.00", not JSON numbers')
    return value


class JsonLinesConnector(Connector[JsonLinesSettings]):
    type_name: ClassVar[str] = "jsonl"
    Settings: ClassVar[type[ConnectorSettings]] = JsonLinesSettings

    @property
    def path(self) -> Path:
        return self.context.config_dir / self.settings.path

    async def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        path = self.path
        if Path(f"{path}{self.settings.lock_suffix}").exists():
            raise RetryableConnectorError(f"{path.name} is being written (lock file present)")
        try:
            handle = path.open(encoding="utf-8")
        except FileNotFoundError:
            raise FatalConnectorError(f"export file not found: {path}") from None
        builder = RecordBuilder()
        with handle:
            for line_no, record in _records(handle):
                self._add(builder, record, f"{path.name}:{line_no}")
                if len(builder.invoices) >= self.settings.page_size:
                    yield builder.page(cursor={"line": line_no})
        yield builder.page(cursor=None, snapshot_complete=True)

    def _add(self, builder: RecordBuilder, record: dict[str, Any] | str, ref: str) -> None:
        if isinstance(record, str):
            builder.reject("row", ref, record)
            return
        kind = record.get("record")
        try:
            if kind == "debtor":
                builder.debtor(
                    {
                        "external_id": record.get("id"),
                        "name": record.get("name"),
                        "kind": record.get("kind", "unknown"),
                        "emails": record.get("emails", []),
                        "phones": record.get("phones", []),
                        "language": record.get("language", "nl"),
                        "address": record.get("address"),
                        "kvk": record.get("kvk"),
                        "vat": record.get("vat"),
                    },
                    ref=ref,
                )
            elif kind == "invoice":
                currency = record.get("currency", "EUR")
                builder.invoice(
                    {
                        "external_id": record.get("id"),
                        "number": record.get("number"),
                        "debtor_id": record.get("debtor"),
                        "issue_date": record.get("issued"),
                        "due_date": record.get("due"),
                        "total": {"amount": _amount(record.get("total")), "currency": currency},
                        "open_amount": {
                            "amount": _amount(record.get("open")),
                            "currency": currency,
                        },
                        "payment_reference": record.get("reference"),
                        "payment_url": record.get("payment_url"),
                    },
                    ref=ref,
                )
            else:
                builder.reject("row", ref, f"unknown record type {kind!r}; use debtor or invoice")
        except ValueError as exc:
            builder.reject("invoice", ref, str(exc), invoice_id=record.get("id"))


def _records(lines: Iterator[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) per non-blank line; a line that is not a JSON object comes back
    as the reason why, so it can be rejected where it is."""
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_no, f"not valid JSON: {exc.msg} at column {exc.colno}"
            continue
        yield line_no, record if isinstance(record, dict) else "not a JSON object"
