"""Dutch calendars: public holidays, business days, postal delivery days, Atw days.

Atw art. 1 and 3 (holidays; art. 3 lid 2: Good Friday counts):
https://wetten.overheid.nl/BWBR0002448 . Good Friday and Liberation Day are decided here, not
by the ``holidays`` package, whose versions differ on them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import holidays

_ONE_DAY = timedelta(days=1)


def easter(year: int) -> date:
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
    easter_sunday = easter(year)
    good_friday, liberation = easter_sunday - timedelta(days=2), date(year, 5, 5)
    # Good Friday and Liberation Day differ between versions of `holidays`: decided here.
    days = set(holidays.country_holidays("NL", years=year)) - {good_friday, liberation}
    if calendar.good_friday:
        days.add(good_friday)
    if calendar.liberation_day == "always" or (
        calendar.liberation_day == "lustrum" and year % 5 == 0
    ):
        days.add(liberation)
    if calendar.friday_after_ascension:
        days.add(easter_sunday + timedelta(days=40))
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
