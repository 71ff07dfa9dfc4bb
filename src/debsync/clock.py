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
