"""Time as debsync sees it: an injected clock, UTC timestamps, Amsterdam calendar dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

Clock = Callable[[], datetime]
"""Returns the current moment as a timezone-aware datetime. Tests pass a fixed one."""


def system_clock() -> datetime:
    return datetime.now(UTC)


def local_date(moment: datetime) -> date:
    """The Dutch calendar date of a moment: every due date and deadline is such a date."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: debsync only handles timezone-aware moments")
    return moment.astimezone(AMSTERDAM).date()


def parse_moment(text: str) -> datetime:
    """An ISO 8601 timestamp with its offset, ``2026-12-15T10:00:00+01:00``: without an offset
    it would name a different moment on every machine, so it is refused."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("the timestamp has no offset (write +01:00 or Z)")
    return moment


def starting_at(start: datetime, real: Clock = system_clock) -> Clock:
    """A clock that reads ``start`` now and moves on with real time: a daemon under test keeps
    its timeouts and backoff, and a later start is a restart with a later value."""
    offset = start - real()
    return lambda: real() + offset
