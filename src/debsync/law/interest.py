"""Statutory interest: the computation over the rate table, and its conventions.

Art. 6:119 (wettelijke rente), 6:119a/b (handelsrente), 6:120 BW: yearly compounding ("telkens
na afloop van een jaar"). The rates come from :mod:`debsync.law.rates`.

FLAG: day count (act/365) and compounding anchor (anniversary of the start) are practice, not
law: :class:`InterestConvention`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from debsync.law.costs import CENT, ZERO
from debsync.law.rates import RateTable, default_rate_table

_ONE_DAY = timedelta(days=1)


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
    return [
        InterestPeriod(first, last, days, rate, base, amount, year_days)
        for (first, last, days, rate, year_days, _), base, amount in _accrue(
            principal, start, end, commercial, table, convention
        )
    ]


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
    accrued = _accrue(principal, start, end, commercial, table, convention)
    return sum((amount for _, _, amount in accrued), ZERO)


_Period = tuple[date, date, int, Decimal, int, bool]
"""(first day, last day, days, rate, day-count denominator, compounds after it)."""


def _accrue(
    principal: Decimal,
    start: date,
    end: date,
    commercial: bool,
    table: RateTable | None,
    convention: InterestConvention,
) -> list[tuple[_Period, Decimal, Decimal]]:
    """Each period with its base and its interest: the computation both functions above
    report."""
    if principal < 0:
        raise ValueError(f"principal must not be negative, got {principal}")
    if end < start or principal == 0:
        return []
    table = default_rate_table() if table is None else table
    out = []
    base, accrued = principal, Decimal(0)
    for period in _periods(start, end, commercial, table, convention):
        _, _, days, rate, year_days, compounds = period
        amount = (base * rate * days / year_days).quantize(CENT, ROUND_HALF_UP)
        out.append((period, base, amount))
        accrued += amount
        if compounds:
            base, accrued = base + accrued, Decimal(0)
    return out


@functools.lru_cache(maxsize=4096)
def _periods(
    start: date, end: date, commercial: bool, table: RateTable, convention: InterestConvention
) -> tuple[_Period, ...]:
    """The periods from ``start`` to ``end``: they depend on the dates and the table, not on
    the principal, and a day's messages share a few due dates, so they are worked out once
    (a table is never changed once built)."""
    resets = iter(_compounding_dates(start, end, convention.compounding))
    reset = next(resets, None)
    periods: list[_Period] = []
    day = start
    while day <= end:
        rate = table.rate(day, commercial=commercial)
        stop = min(date(day.year + 1, 1, 1), end + _ONE_DAY, reset or date.max)
        july = date(day.year, 7, 1)
        if day < july < stop and table.rate(july, commercial=commercial) != rate:
            stop = july
        year_days = 365
        if convention.day_count is DayCount.ACT_ACT:
            year_days = (date(day.year + 1, 1, 1) - date(day.year, 1, 1)).days
        compounds = stop == reset
        periods.append((day, stop - _ONE_DAY, (stop - day).days, rate, year_days, compounds))
        day = stop
        if compounds:
            reset = next(resets, None)
    return tuple(periods)


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
