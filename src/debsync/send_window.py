"""When a message may go out (pure): a :class:`~debsync.service_config.SendWindow` asked about
a moment.

A window is read in its own time zone, so 09:00 stays 09:00 on the clock on the wall across
the switch to and from summer time. With ``holidays = "NL"`` the days closed are those of the
business calendar (:data:`debsync.law.calendar.BUSINESS_CALENDAR`'s holidays: New Year, Good
Friday, Easter Monday, King's Day, Liberation Day in lustrum years, Ascension, Whit Monday,
Christmas and Boxing Day): a debtor should not hear from us on a day off.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from debsync.law.calendar import DutchCalendar
from debsync.service_config import DaemonSettings, SendWindow

_HORIZON = 400
"""Days looked ahead for an open day: a window open on at least one weekday opens within a
few weeks; more than a year means it names no day that is ever open."""


@functools.cache
def _calendar(days: tuple[int, ...]) -> DutchCalendar:
    return DutchCalendar(frozenset(days))


def _open_day(window: SendWindow, day: date) -> bool:
    if window.holidays == "none":
        return day.weekday() in window.days
    return _calendar(window.days).is_open(day)


def _local(window: SendWindow, at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime: a send window is asked about aware moments only")
    return at.astimezone(ZoneInfo(window.timezone))


def is_open(window: SendWindow, at: datetime) -> bool:
    """Whether a message may go out at ``at``: an open day, from ``start`` up to (not
    including) ``end`` local time."""
    local = _local(window, at)
    return _open_day(window, local.date()) and window.start <= local.time() < window.end


def next_open(window: SendWindow, at: datetime) -> datetime:
    """``at`` itself when the window is open then, else the moment it next opens (in the
    window's time zone)."""
    if is_open(window, at):
        return at
    zone = ZoneInfo(window.timezone)
    local = _local(window, at)
    day = local.date()
    if local.time() >= window.start:
        day += timedelta(days=1)
    for _ in range(_HORIZON):
        if _open_day(window, day):
            # Round trip through UTC: a start inside a spring-forward gap becomes a real time.
            opens = datetime.combine(day, window.start, tzinfo=zone)
            return opens.astimezone(ZoneInfo("UTC")).astimezone(zone)
        day += timedelta(days=1)
    raise ValueError(f"the send window opens on no day within {_HORIZON} days")


def open_channels(settings: DaemonSettings, channels: Iterable[str], at: datetime) -> set[str]:
    """The channels among ``channels`` whose window (their own, else ``send_window``) is open
    at ``at``."""
    return {c for c in channels if is_open(settings.window_for(c), at)}


def next_opening(settings: DaemonSettings, channels: Iterable[str], at: datetime) -> datetime:
    """The first moment from ``at`` at which any of ``channels`` may send (``send_window``'s
    when there are none): what ``plan`` and ``status`` tell a person."""
    windows = {settings.window_for(c) for c in channels} or {settings.send_window}
    return min(next_open(w, at) for w in windows)
