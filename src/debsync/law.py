"""Dutch statutory rules for dunning: collection costs, statutory interest, dates.

Pure functions over ``Decimal`` and ``datetime.date``; the only I/O is reading the shipped
interest table and, if configured, the operator's own. This is a reading of public law for
engineers, not legal advice. Everything marked FLAG rests on a secondary source or on an
interpretation, and is therefore a parameter with a documented default, not a constant.

Collection costs (buitengerechtelijke incassokosten, BIK)
    Art. 6:96 lid 2 sub c, 4-7 BW; Besluit vergoeding voor buitengerechtelijke incassokosten
    (Stb. 2012, 141) art. 2: https://wetten.overheid.nl/BWBR0031432 ,
    https://zoek.officielebekendmakingen.nl/stb-2012-141.html . The staffel applies to the
    principal only (not interest); for one letter covering several claims, to their sum (lid 7:
    :func:`collection_costs_for`). A principal of zero or less owes nothing: the EUR 40
    minimum compensates collecting a claim, and there is none.
    FLAG: rounding (half-up to cents, once) and cap-before-VAT are conventions, see
    :class:`Staffel`; the Wki cumulation cap (Stb. 2024, 44) was not read in full, see
    :class:`CumulationRule`.

Statutory interest
    Art. 6:119 (wettelijke rente), 6:119a/b (handelsrente), 6:120 BW: yearly compounding ("telkens
    na afloop van een jaar"). Rates come from ``data/statutory_interest.csv`` plus the
    operator's file, never from a formula, and never past the last known half-year
    (:class:`RateUnknownError`). File format (UTF-8, one row per line; ``#`` lines and blank
    lines are ignored; the header is required)::

        valid_from,article,rate_percent,source
        2026-01-01,6:119a,10.15,https://example.org/where-it-was-published

    ``valid_from`` is 1 January or 1 July and a row holds for that half-year only; ``article``
    is ``6:119`` or ``6:119a``; ``source`` is required. Rows of a later file replace rows of
    the shipped table with the same ``valid_from`` and ``article``.
    FLAG: day count (act/365) and compounding anchor (anniversary of the start) are practice,
    not law: :class:`InterestConvention`.

Dates
    Veertiendagenbrief: HR 25-11-2016, ECLI:NL:HR:2016:2704 (term starts the day after
    receipt; posted letters presumed delivered on the 2nd delivery day, not counting Sundays,
    Mondays and public holidays). Postal norm D+2 from 2026-07-01 and D+3 from 2027-07-01:
    https://www.rijksoverheid.nl/actueel/nieuws/2025/12/19/kabinet-besluit-tot-aanpassing-bezorgtijd-post-per-juli-2026-en-juli-2027
    FLAG: the delivery-day schedule (:data:`POSTAL_DELIVERY_SCHEDULE`) after the norm change
    and whether the Algemene termijnenwet (Atw) extends the 14-day term
    (:func:`veertiendagenbrief_term`) are unsettled. Atw art. 1 and 3 (holidays; art. 3 lid 2:
    Good Friday counts): https://wetten.overheid.nl/BWBR0002448 .
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Literal

import holidays

from debsync.errors import DebsyncError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_ONE_DAY = timedelta(days=1)

# -- collection costs (BIK) ---------------------------------------------------------------


@dataclass(frozen=True)
class Staffel:
    """The BIK staffel (Besluit BIK art. 2). ``bands``: (width or None for the rest, rate).

    FLAG (convention, not law): ``rounding`` is applied once to the total; with
    ``cap_before_vat`` the minimum and maximum bound the amount before the VAT surcharge (so
    EUR 6,775 x 1.21 = 8,197.75 is the maximum with 21 % VAT), otherwise they bound the total.
    """

    bands: tuple[tuple[Decimal | None, Decimal], ...]
    minimum: Decimal
    maximum: Decimal
    rounding: str = ROUND_HALF_UP
    cap_before_vat: bool = True


BIK_STAFFEL = Staffel(
    bands=(
        (Decimal("2500"), Decimal("0.15")),
        (Decimal("2500"), Decimal("0.10")),
        (Decimal("5000"), Decimal("0.05")),
        (Decimal("190000"), Decimal("0.01")),
        (None, Decimal("0.005")),
    ),
    minimum=Decimal("40.00"),
    maximum=Decimal("6775.00"),
)

B2B_COMPENSATION = Decimal("40.00")
"""Fixed compensation in a handelsovereenkomst, due without demand (art. 6:96 lid 4 BW)."""


def collection_costs(
    principal: Decimal, *, vat_rate: Decimal | None = None, staffel: Staffel = BIK_STAFFEL
) -> Decimal:
    """BIK on an unpaid principal, in cents; ``Decimal("0.00")`` for a principal <= 0.

    :param vat_rate: VAT added on top, e.g. ``Decimal("0.21")``, only when the creditor cannot
        deduct VAT and says so in the letter (Besluit art. 2 lid 3). ``None`` or 0: no VAT.
    """
    if vat_rate is not None and not Decimal(0) <= vat_rate < 1:
        raise ValueError(f"vat_rate must be a fraction in [0, 1), e.g. 0.21; got {vat_rate}")
    if principal <= 0:
        return ZERO
    rest, raw = principal, Decimal(0)
    for width, rate in staffel.bands:
        part = rest if width is None else min(rest, width)
        raw += part * rate
        rest -= part
        if rest <= 0:
            break
    factor = 1 + (vat_rate or 0)
    if staffel.cap_before_vat:
        amount = min(max(raw, staffel.minimum), staffel.maximum).quantize(CENT, staffel.rounding)
        return (amount * factor).quantize(CENT, staffel.rounding)
    amount = min(max(raw * factor, staffel.minimum), staffel.maximum)
    return amount.quantize(CENT, staffel.rounding)


def collection_costs_for(
    principals: Iterable[Decimal],
    *,
    vat_rate: Decimal | None = None,
    staffel: Staffel = BIK_STAFFEL,
) -> Decimal:
    """BIK for one letter covering several claims: the staffel on the summed principal
    (art. 6:96 lid 7 BW), not the sum of per-claim amounts."""
    return collection_costs(sum(principals, Decimal(0)), vat_rate=vat_rate, staffel=staffel)


@dataclass(frozen=True)
class CumulationRule:
    """FLAG: the Wki cumulation rule for small recurring consumer claims (Besluit BIK as
    amended by Stb. 2024, 44, https://zoek.officielebekendmakingen.nl/stb-2024-44.html), as
    summarised by secondary sources; the article text (trigger, scope of the cap, VAT) was not
    read. Recurring claims of the same creditor against a consumer, each below
    ``claim_below``, that fell due within ``lookback_months`` count as one: their BIK together
    is at most ``cap``.
    """

    in_force_from: date = date(2024, 10, 1)
    claim_below: Decimal = Decimal("266.67")
    lookback_months: int = 6
    cap: Decimal = Decimal("140.00")

    def covers(self, principal: Decimal, due_date: date) -> bool:
        """Whether a recurring claim falls under the rule."""
        return due_date >= self.in_force_from and 0 < principal < self.claim_below

    def window_start(self, today: date) -> date:
        """First due date that counts with claims due today (``lookback_months`` back)."""
        month = today.year * 12 + today.month - 1 - self.lookback_months
        year, month0 = divmod(month, 12)
        for day in (today.day, 30, 29, 28):  # clamp 31 August -> 28/29 February
            try:
                return date(year, month0 + 1, day)
            except ValueError:
                continue
        raise AssertionError("unreachable")  # pragma: no cover

    def limit(self, costs: Decimal, *, already_charged: Decimal) -> Decimal:
        """``costs`` reduced so that the claims in one window never carry more than ``cap``."""
        return max(ZERO, min(costs, self.cap - already_charged)).quantize(CENT, ROUND_HALF_UP)


WKI_CUMULATION = CumulationRule()

# -- statutory interest -------------------------------------------------------------------


class Article(StrEnum):
    """Which statutory interest: the key of a row in the rate table."""

    WETTELIJKE_RENTE = "6:119"  # non-commercial, e.g. consumers
    HANDELSRENTE = "6:119a"  # commercial transactions (and 6:119b, public bodies)


def _article(commercial: bool) -> Article:
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
        article = _article(commercial)
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
        article or (``None``) for both. ``debsync status`` warns when this is near."""
        articles = list(Article) if commercial is None else [_article(commercial)]
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
def _default_table() -> RateTable:
    return load_rate_table()


class DayCount(StrEnum):
    ACT_365 = "act/365"  # actual days / 365, also in leap years
    ACT_ACT = "act/act"  # actual days / days in that calendar year


class Compounding(StrEnum):
    ANNIVERSARY = "anniversary"  # interest added to the base on each anniversary of the start
    CALENDAR_YEAR = "calendar-year"  # added on each 1 January


@dataclass(frozen=True)
class InterestConvention:
    """FLAG: the law prescribes neither (research note A2.3); state it on every specification."""

    day_count: DayCount = DayCount.ACT_365
    compounding: Compounding = Compounding.ANNIVERSARY


DEFAULT_CONVENTION = InterestConvention()


@dataclass(frozen=True)
class InterestPeriod:
    """A run of days (``start`` to ``end``, both inclusive) with one rate and one base."""

    start: date
    end: date
    days: int
    rate: Decimal
    base: Decimal
    amount: Decimal
    year_days: int  # the day-count denominator used


def _anniversary(start: date, years: int) -> date:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February: the year ends on 28 February, compound on 1 March
        return date(start.year + years, 3, 1)


def _compounding_dates(start: date, end: date, compounding: Compounding) -> list[date]:
    """Days on which the interest so far is added to the base, in (start, end]."""
    if compounding is Compounding.CALENDAR_YEAR:
        return [date(y, 1, 1) for y in range(start.year + 1, end.year + 1)]
    out, k = [], 1
    while (day := _anniversary(start, k)) <= end:
        out.append(day)
        k += 1
    return out


def statutory_interest_breakdown(
    principal: Decimal,
    start: date,
    end: date,
    *,
    commercial: bool,
    table: RateTable | None = None,
    convention: InterestConvention = DEFAULT_CONVENTION,
) -> list[InterestPeriod]:
    """Statutory interest on ``principal`` from ``start`` to ``end``, both days inclusive.

    Periods are cut at each compounding date, each 1 January, and each 1 July on which the
    rate changes (this reproduces the worked examples of the research note, A2.4); each
    period's interest is rounded half-up to cents; on each compounding date the interest
    since the previous one is added to the base (art. 6:119 lid 2, 6:119a lid 3 BW).
    ``end < start`` or a zero principal gives no periods.

    :param commercial: ``True`` for handelsrente (6:119a/b), ``False`` for 6:119.
    :raises RateUnknownError: a day in the range has no rate in ``table``.
    """
    if principal < 0:
        raise ValueError(f"principal must not be negative, got {principal}")
    if end < start or principal == 0:
        return []
    table = _default_table() if table is None else table
    resets = iter(_compounding_dates(start, end, convention.compounding))
    reset = next(resets, None)
    periods: list[InterestPeriod] = []
    base, accrued = principal, Decimal(0)
    day = start
    while day <= end:
        rate = table.rate(day, commercial=commercial)
        stop = min(date(day.year + 1, 1, 1), end + _ONE_DAY, reset or date.max)
        july = date(day.year, 7, 1)
        if day < july < stop and table.rate(july, commercial=commercial) != rate:
            stop = july
        days = (stop - day).days
        year_days = 365
        if convention.day_count is DayCount.ACT_ACT:
            year_days = (date(day.year + 1, 1, 1) - date(day.year, 1, 1)).days
        amount = (base * rate * days / year_days).quantize(CENT, ROUND_HALF_UP)
        periods.append(InterestPeriod(day, stop - _ONE_DAY, days, rate, base, amount, year_days))
        accrued += amount
        day = stop
        if day == reset:
            base, accrued = base + accrued, Decimal(0)
            reset = next(resets, None)
    return periods


def statutory_interest(
    principal: Decimal,
    start: date,
    end: date,
    *,
    commercial: bool,
    table: RateTable | None = None,
    convention: InterestConvention = DEFAULT_CONVENTION,
) -> Decimal:
    """Total of :func:`statutory_interest_breakdown`, in cents."""
    periods = statutory_interest_breakdown(
        principal, start, end, commercial=commercial, table=table, convention=convention
    )
    return sum((p.amount for p in periods), ZERO)


def commercial_interest_start(
    due_date: date | None = None, *, invoice_received: date | None = None
) -> date:
    """First day of handelsrente (art. 6:119a BW), also the day the EUR 40 of 6:96 lid 4 is due.

    With an agreed last day of payment: the day after it (lid 1). Without one: 30 days after
    the start of the day after the invoice was received, i.e. ``invoice_received`` + 31 days
    (lid 2 sub a; the variants of sub b and c are the caller's choice of ``invoice_received``).
    """
    if due_date is not None:
        return due_date + _ONE_DAY
    if invoice_received is None:
        raise ValueError("give the agreed due date or the day the invoice was received")
    return invoice_received + timedelta(days=31)


# -- calendars ----------------------------------------------------------------------------


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday = (32 + 2 * e + 2 * i - h - k) % 7
    n = h + weekday - 7 * ((a + 11 * h + 22 * weekday) // 451) + 114
    return date(year, n // 31, n % 31 + 1)


@dataclass(frozen=True)
class DutchCalendar:
    """Which days are open. Closed: weekdays outside ``open_weekdays`` (Monday = 0) and the
    Dutch public holidays of the ``holidays`` package (New Year, Easter Monday, King's Day
    (27 April, 26 April when the 27th is a Sunday), Ascension, Whit Monday, Christmas Day and
    Boxing Day), plus, per the fields below, Good Friday, Liberation Day (5 May), the Friday
    after Ascension and any ``extra_closed`` days."""

    open_weekdays: frozenset[int]
    good_friday: bool = True
    liberation_day: Literal["always", "lustrum", "never"] = "lustrum"
    friday_after_ascension: bool = False
    extra_closed: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:  # accept any iterable, stay hashable (cached per year)
        object.__setattr__(self, "open_weekdays", frozenset(self.open_weekdays))
        if not self.open_weekdays or not self.open_weekdays <= frozenset(range(7)):
            raise ValueError(
                f"open_weekdays must be some of 0 (Monday) to 6, got {self.open_weekdays}"
            )
        object.__setattr__(self, "extra_closed", frozenset(self.extra_closed))

    def is_open(self, day: date) -> bool:
        return day.weekday() in self.open_weekdays and day not in _closed_days(self, day.year)


@functools.cache
def _closed_days(calendar: DutchCalendar, year: int) -> frozenset[date]:
    easter = _easter(year)
    good_friday, liberation = easter - timedelta(days=2), date(year, 5, 5)
    # Good Friday and Liberation Day differ between versions of `holidays`: decided here.
    days = set(holidays.country_holidays("NL", years=year)) - {good_friday, liberation}
    if calendar.good_friday:
        days.add(good_friday)
    if calendar.liberation_day == "always" or (
        calendar.liberation_day == "lustrum" and year % 5 == 0
    ):
        days.add(liberation)
    if calendar.friday_after_ascension:
        days.add(easter + timedelta(days=40))
    return frozenset(days | {d for d in calendar.extra_closed if d.year == year})


_MON_FRI = frozenset(range(5))

BUSINESS_CALENDAR = DutchCalendar(_MON_FRI)
"""Business days: Monday to Friday except public holidays and Good Friday (banks do not settle
SEPA payments on it: TARGET2 is closed); Liberation Day only in lustrum years (2025, 2030)."""

POSTAL_DELIVERY_CALENDAR = DutchCalendar(frozenset(range(1, 6)), liberation_day="always")
"""Postal delivery days: Tuesday to Saturday (HR 2016: not Sundays and Mondays; the 2026 norm:
delivery Tuesday to Saturday) except public holidays, Good Friday and 5 May (an Atw holiday
every year): when in doubt, a later presumed receipt is the safe side."""

TERMIJNENWET_CALENDAR = DutchCalendar(
    _MON_FRI, liberation_day="always", friday_after_ascension=True
)
"""Atw art. 1 and 3: a term ending on a Saturday, Sunday or recognised holiday (incl. Good
Friday, art. 3 lid 2, and 5 May every year) ends on the next other day. Days equated by royal
decree (art. 3 lid 3) vary; the Friday after Ascension always is [S], add others in
``extra_closed``."""


def is_business_day(day: date, *, calendar: DutchCalendar = BUSINESS_CALENDAR) -> bool:
    return calendar.is_open(day)


@functools.lru_cache(maxsize=4096)
def add_business_days(day: date, n: int, *, calendar: DutchCalendar = BUSINESS_CALENDAR) -> date:
    """The ``n``-th business day after ``day`` (before it for negative ``n``); ``day`` for 0.

    Cached: every message of a day asks for the same few deadlines."""
    step = _ONE_DAY if n >= 0 else -_ONE_DAY
    for _ in range(abs(n)):
        day += step
        while not calendar.is_open(day):
            day += step
    return day


def next_business_day(day: date, *, calendar: DutchCalendar = BUSINESS_CALENDAR) -> date:
    """The first business day strictly after ``day``."""
    return add_business_days(day, 1, calendar=calendar)


# -- receipt and the veertiendagenbrief ---------------------------------------------------


class ReceiptNotPresumedError(DebsyncError):
    """No receipt date can be presumed for this channel: it cannot carry the legal copy."""


@dataclass(frozen=True)
class DeliverySchedule:
    """Presumed postal delivery days by posting date: ``steps`` of (posted on or after, days),
    ascending. FLAG: after the 2026 postal norm change there is no case law (note A1.8)."""

    steps: tuple[tuple[date, int], ...]

    def days_for(self, sent: date) -> int:
        applicable = [(start, n) for start, n in self.steps if start <= sent]
        if not applicable:
            raise ValueError(f"the delivery schedule starts after {sent}")
        return max(applicable)[1]


POSTAL_DELIVERY_SCHEDULE = DeliverySchedule(
    ((date.min, 2), (date(2026, 7, 1), 3), (date(2027, 7, 1), 4))
)

POSTAL_CHANNELS = frozenset({"letter", "post"})


def presumed_receipt(
    sent: date,
    channel: str,
    *,
    delivery_days: int | None = None,
    email_is_legal_copy: bool = False,
    schedule: DeliverySchedule = POSTAL_DELIVERY_SCHEDULE,
    calendar: DutchCalendar = POSTAL_DELIVERY_CALENDAR,
) -> date:
    """The day a message sent on ``sent`` is presumed received.

    Post (``"letter"``/``"post"``): the ``delivery_days``-th delivery day after posting
    (default from ``schedule`` by posting date). Email: the day it was sent, but only if the
    creditor made email the legal copy (FLAG: proof of receipt by email is contested, note
    A1.7 #12; a bounce means no receipt); otherwise :class:`ReceiptNotPresumedError`.
    """
    if channel == "email":
        if email_is_legal_copy:
            return sent
        raise ReceiptNotPresumedError(
            "email is not the legal copy: no receipt date is presumed for it; send the "
            "veertiendagenbrief by post, or set email_is_legal_copy in the policy"
        )
    if channel not in POSTAL_CHANNELS:
        raise ReceiptNotPresumedError(f"no receipt date is presumed for channel {channel!r}")
    days = schedule.days_for(sent) if delivery_days is None else delivery_days
    if days < 1:
        raise ValueError(f"delivery_days must be at least 1, got {days}")
    received = sent
    for _ in range(days):
        received += _ONE_DAY
        while not calendar.is_open(received):
            received += _ONE_DAY
    return received


@dataclass(frozen=True)
class Term:
    """The 14-day term of a veertiendagenbrief (art. 6:96 lid 6 BW, HR 2016:2704).

    ``last_day`` is the day the debtor may still pay: ``nominal_last_day`` (receipt + 14),
    moved forward if the Atw extension applies. Costs are due from ``costs_due_from``.
    """

    receipt: date
    first_day: date
    nominal_last_day: date
    last_day: date
    costs_due_from: date
    days: int = 14


def veertiendagenbrief_term(
    receipt: date,
    *,
    apply_termijnenwet: bool = True,
    calendar: DutchCalendar = TERMIJNENWET_CALENDAR,
) -> Term:
    """The term starts the day after receipt and runs 14 days; costs are due the day after.

    FLAG (note A1.8): whether the Algemene termijnenwet extends this term is unsettled; by
    default (``apply_termijnenwet``) a term ending on a Saturday, Sunday or Atw holiday runs
    to the next day that is none of those, which can only make the debtor's term longer.
    """
    nominal = receipt + timedelta(days=14)
    last = nominal
    while apply_termijnenwet and not calendar.is_open(last):
        last += _ONE_DAY
    return Term(receipt, receipt + _ONE_DAY, nominal, last, last + _ONE_DAY)
