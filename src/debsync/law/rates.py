"""The statutory interest rate table: which rate holds on which day, and nothing guessed.

Rates of art. 6:119 (wettelijke rente) and 6:119a/b (handelsrente) BW come from
``data/statutory_interest.csv`` plus the operator's file, never from a formula, and never past
the last known half-year (:class:`RateUnknownError`). File format (UTF-8, one row per line;
``#`` lines and blank lines are ignored; the header is required)::

    valid_from,article,rate_percent,source
    2026-01-01,6:119a,10.15,https://example.org/where-it-was-published

``valid_from`` is 1 January or 1 July and a row holds for that half-year only; ``article`` is
``6:119`` or ``6:119a``; ``source`` is required. Rows of a later file replace rows of the
shipped table with the same ``valid_from`` and ``article``.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from importlib import resources
from pathlib import Path

from debsync.errors import DebsyncError

_ONE_DAY = timedelta(days=1)


class Article(StrEnum):
    """Which statutory interest: the key of a row in the rate table."""

    WETTELIJKE_RENTE = "6:119"  # non-commercial, e.g. consumers
    HANDELSRENTE = "6:119a"  # commercial transactions (and 6:119b, public bodies)


def article_for(commercial: bool) -> Article:
    """The article whose rate applies: 6:119a between businesses, 6:119 otherwise."""
    return Article.HANDELSRENTE if commercial else Article.WETTELIJKE_RENTE


class RateUnknownError(DebsyncError):
    """No rate is known for a day: the table must be extended, rates are never guessed."""

    def __init__(self, day: date | None, article: Article, table_end: date | None) -> None:
        self.day, self.article, self.table_end = day, article, table_end
        start = _half_year_start(day) if day else "<YYYY-MM-DD>"
        what = f"is known for {day}" if day else "is known at all"
        ends = f"the table ends on {table_end}" if table_end else "the table has no rows for it"
        super().__init__(
            f"no statutory interest rate (art. {article} BW) {what}; {ends}. "
            f"Add a row '{start},{article},<rate_percent>,<source>' to the CSV named in [law] "
            "interest_rates of connectors.toml (format: docs/law.md), or upgrade debsync"
        )


class RateTableError(DebsyncError):
    """A rate file cannot be read, or a row in it is malformed or conflicting."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file, self.line = file, line
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


@dataclass(frozen=True)
class RateRow:
    """One half-year's rate; ``rate`` is a fraction (0.1015), ``origin`` is "file:line"."""

    valid_from: date
    article: Article
    rate: Decimal
    source: str
    origin: str


RATE_HEADER = ("valid_from", "article", "rate_percent", "source")


def _half_year_start(day: date) -> date:
    return date(day.year, 1 if day.month < 7 else 7, 1)


def _next_half_year(start: date) -> date:
    return date(start.year, 7, 1) if start.month == 1 else date(start.year + 1, 1, 1)


class RateTable:
    """Statutory interest rates by article and half-year. Later rows replace earlier ones."""

    def __init__(self, rows: Iterable[RateRow]) -> None:
        self._rows: dict[tuple[Article, date], RateRow] = {}
        for row in rows:
            self._rows[(row.article, row.valid_from)] = row

    def rows(self) -> list[RateRow]:
        return sorted(self._rows.values(), key=lambda r: (r.valid_from, r.article))

    def row_for(self, day: date, *, commercial: bool) -> RateRow:
        article = article_for(commercial)
        row = self._rows.get((article, _half_year_start(day)))
        if row is None:
            raise RateUnknownError(day, article, self._last_known(article))
        return row

    def rate(self, day: date, *, commercial: bool) -> Decimal:
        return self.row_for(day, commercial=commercial).rate

    def _last_known(self, article: Article) -> date | None:
        starts = [d for (a, d) in self._rows if a is article]
        if not starts:
            return None
        half = min(starts)
        while (article, half) in self._rows:
            half = _next_half_year(half)
        return half - _ONE_DAY

    def last_known(self, *, commercial: bool | None = None) -> date:
        """Last day up to which rates are known without a gap from the first row, for one
        article or (``None``) for both. :func:`rate_table_warnings` warns when this is near."""
        articles = list(Article) if commercial is None else [article_for(commercial)]
        ends: list[date] = []
        for article in articles:
            end = self._last_known(article)
            if end is None:
                raise RateUnknownError(None, article, None)
            ends.append(end)
        return min(ends)


def parse_rate_rows(text: str, origin: str) -> list[RateRow]:
    """Parse a rate file (format in the module docstring); errors name ``origin`` and line."""
    rows: dict[tuple[Article, date], RateRow] = {}
    header = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            fields = [f.strip() for f in next(csv.reader([raw], strict=True))]
        except csv.Error as exc:
            raise RateTableError(origin, lineno, f"not valid CSV: {exc}") from None
        if not header:
            if tuple(fields) != RATE_HEADER:
                raise RateTableError(origin, lineno, f"expected the header {','.join(RATE_HEADER)}")
            header = True
            continue
        try:
            row = _parse_row(fields, f"{origin}:{lineno}")
        except ValueError as exc:
            raise RateTableError(origin, lineno, str(exc)) from None
        earlier = rows.get((row.article, row.valid_from))
        if earlier is not None and earlier.rate != row.rate:
            raise RateTableError(
                origin,
                lineno,
                f"{row.valid_from} art. {row.article} is {row.rate * 100}% here but "
                f"{earlier.rate * 100}% on line {earlier.origin.rsplit(':', 1)[1]}",
            )
        rows[(row.article, row.valid_from)] = row
    if not header:
        raise RateTableError(origin, None, f"empty: expected the header {','.join(RATE_HEADER)}")
    return list(rows.values())


def _parse_row(fields: list[str], where: str) -> RateRow:
    """One data row; ``ValueError`` with a message for the operator if it is malformed."""
    if len(fields) != len(RATE_HEADER):
        raise ValueError(
            f"expected {len(RATE_HEADER)} fields ({','.join(RATE_HEADER)}), got {len(fields)}"
        )
    when, article_text, percent, source = fields
    try:
        valid_from = date.fromisoformat(when)
    except ValueError:
        raise ValueError(f"valid_from {when!r} is not a date like 2026-07-01") from None
    if (valid_from.month, valid_from.day) not in ((1, 1), (7, 1)):
        raise ValueError(f"valid_from {when} must be 1 January or 1 July (half-years)")
    try:
        article = Article(article_text)
    except ValueError:
        raise ValueError(f"article {article_text!r} must be one of {', '.join(Article)}") from None
    try:
        rate = Decimal(percent)
    except InvalidOperation:
        raise ValueError(f"rate_percent {percent!r} is not a number like 10.15") from None
    if not rate.is_finite() or not 0 <= rate < 100:
        raise ValueError(f"rate_percent {percent!r} must be a percentage from 0 to 100")
    if not source:
        raise ValueError("source is empty: say where the rate was published")
    return RateRow(valid_from, article, rate / 100, source, where)


@functools.cache
def _shipped_rows() -> tuple[RateRow, ...]:
    resource = resources.files("debsync") / "data" / "statutory_interest.csv"
    return tuple(
        parse_rate_rows(resource.read_text("utf-8"), "debsync/data/statutory_interest.csv")
    )


def load_rate_table(extra: Path | None = None) -> RateTable:
    """The shipped table, with the rows of ``extra`` (if given) replacing or extending it."""
    rows = list(_shipped_rows())
    if extra is not None:
        try:
            text = extra.read_text("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise RateTableError(str(extra), None, f"cannot be read: {exc}") from None
        rows += parse_rate_rows(text, str(extra))
    return RateTable(rows)


@functools.cache
def default_rate_table() -> RateTable:
    """The shipped table alone, read once: what a computation uses when given no table."""
    return load_rate_table()


RATE_TABLE_WARNING_DAYS = 30
"""Warn this many days before the table ends: time to add the next half-year's rates."""


HELD_WITHOUT_INTEREST = (
    "held for approval: no statutory interest rate is known for today, so the interest this "
    "step claims cannot be computed; add the rates ([law] interest_rates) or approve it to "
    "send it without interest"
)
"""The note on an action that claims interest and waits for a person because of a gap in the
table (the policy's ``send_without_interest`` sends it without interest instead)."""


def rate_gap_warning(exc: RateUnknownError, send_anyway: bool) -> str:
    """The one warning for every action that met the end of the table: it names the table's
    end, not the invoice's day, so a plan with 44 such actions says it once."""
    if exc.table_end is None:
        ends = "has no rows"
    elif exc.day is not None and exc.day <= exc.table_end:  # an invoice due before 2015
        ends = "has no rates before its first half-year"
    else:
        ends = f"ends on {exc.table_end.isoformat()}"
    what = (
        "go out without interest (send_without_interest = true)"
        if send_anyway
        else "wait for approval (`debsync outbox --state awaiting_approval`) instead of going "
        "out without it"
    )
    return (
        f"the statutory interest table needs an update: it {ends}, so steps that claim "
        f"interest {what}. Add the next "
        "half-year's rates ([law] interest_rates in connectors.toml, see docs/law.md) or "
        "upgrade debsync"
    )


def rate_table_warnings(today: date, extra: Path | None = None) -> list[str]:
    """What an operator must hear on ``today`` about the table ``load_rate_table(extra)``.

    Empty while rates are known beyond the next :data:`RATE_TABLE_WARNING_DAYS` days; a month
    before the table ends, and every day after, a warning, because from then on steps that
    claim interest are held (or, with ``send_without_interest``, sent without it); or why the
    table cannot be read.
    """
    try:
        last = load_rate_table(extra).last_known()
    except (RateTableError, RateUnknownError) as exc:
        return [f"statutory interest table cannot be read: {exc}"]
    if (last - today).days > RATE_TABLE_WARNING_DAYS:
        return []
    return [
        f"the statutory interest table ends on {last.isoformat()}; add the next half-year's "
        "rates ([law] interest_rates, see docs/law.md) or upgrade debsync, otherwise steps "
        "that claim interest wait for approval from then on"
    ]
