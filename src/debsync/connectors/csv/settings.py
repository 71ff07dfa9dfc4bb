"""The ``csv`` connector's settings: the ``[connectors.<name>]`` table with ``type = "csv"``."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from debsync.connectors.base import ConnectorSettings
from debsync.connectors.csv.aliases import MULTI_COLUMN, REQUIRED, ColumnKey, normalise_header
from debsync.model import DEFAULT_CURRENCY, Currency


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
    sheet: str | None = Field(
        default=None,
        description="For an .xlsx workbook: the sheet to read. Default: the first sheet.",
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
