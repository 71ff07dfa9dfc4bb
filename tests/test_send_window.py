"""Send windows: open days and hours in the window's time zone, Dutch holidays, DST."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from debsync.send_window import is_open, next_open, next_opening, open_channels
from debsync.service_config import DaemonSettings, SendWindow

AMS = "Europe/Amsterdam"
DEFAULT = SendWindow()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-12-14T08:59:59+01:00", False),  # Monday, a second before nine
        ("2026-12-14T09:00:00+01:00", True),
        ("2026-12-14T16:59:59+01:00", True),
        ("2026-12-14T17:00:00+01:00", False),  # the end is not included
        ("2026-12-14T08:00:00+00:00", True),  # 09:00 in Amsterdam, asked in UTC
        ("2026-12-12T10:00:00+01:00", False),  # Saturday
        ("2026-12-13T10:00:00+01:00", False),  # Sunday
        ("2026-12-25T10:00:00+01:00", False),  # Christmas Day (a Friday)
        ("2026-12-24T10:00:00+01:00", True),  # Christmas Eve is a working day
        ("2026-04-27T10:00:00+02:00", False),  # King's Day (a Monday)
        ("2026-04-06T10:00:00+02:00", False),  # Easter Monday
        ("2026-04-03T10:00:00+02:00", False),  # Good Friday
        ("2025-05-05T10:00:00+02:00", False),  # Liberation Day in a lustrum year
        ("2026-05-05T10:00:00+02:00", True),  # ... and not in other years
        ("2026-03-30T09:00:00+02:00", True),  # the Monday after the switch to summer time
        ("2026-03-30T08:30:00+01:00", True),  # 09:30 CEST, written in winter time
        ("2026-10-26T08:30:00+01:00", False),  # the Monday after: winter time again
    ],
)
def test_is_open(moment: str, expected: bool) -> None:
    assert is_open(DEFAULT, at(moment)) is expected


@pytest.mark.parametrize(
    ("moment", "opens"),
    [
        ("2026-12-14T10:00:00+01:00", "2026-12-14T10:00:00+01:00"),  # open: now
        ("2026-12-14T08:59:00+01:00", "2026-12-14T09:00:00+01:00"),
        ("2026-12-14T17:00:00+01:00", "2026-12-15T09:00:00+01:00"),
        ("2026-12-12T10:00:00+01:00", "2026-12-14T09:00:00+01:00"),  # Saturday → Monday
        ("2026-12-24T17:30:00+01:00", "2026-12-28T09:00:00+01:00"),  # over Christmas
        ("2026-04-24T18:00:00+02:00", "2026-04-28T09:00:00+02:00"),  # over King's Day
        ("2026-04-02T17:00:00+02:00", "2026-04-07T09:00:00+02:00"),  # over Easter
        ("2026-03-27T18:00:00+01:00", "2026-03-30T09:00:00+02:00"),  # into summer time
        ("2026-10-23T18:00:00+02:00", "2026-10-26T09:00:00+01:00"),  # into winter time
        ("2026-12-31T17:00:00+01:00", "2027-01-04T09:00:00+01:00"),  # over New Year
    ],
)
def test_next_open(moment: str, opens: str) -> None:
    found = next_open(DEFAULT, at(moment))
    assert found == at(opens)
    assert found.utcoffset() == at(opens).utcoffset()  # in the window's own zone
    assert is_open(DEFAULT, found)


def test_without_holidays_only_the_days_and_hours_count() -> None:
    window = SendWindow(holidays="none")
    assert is_open(window, at("2026-12-25T10:00:00+01:00"))
    assert next_open(window, at("2026-12-24T18:00:00+01:00")) == at("2026-12-25T09:00:00+01:00")


def test_a_window_in_another_zone_and_on_other_days() -> None:
    window = SendWindow(days="sat", start=time(10), end=time(12), timezone="UTC", holidays="none")
    assert is_open(window, at("2026-12-12T10:30:00+00:00"))
    assert not is_open(window, at("2026-12-12T10:30:00+01:00"))  # 09:30 UTC
    assert next_open(window, at("2026-12-12T12:00:00Z")) == datetime(2026, 12, 19, 10, tzinfo=UTC)


def test_a_start_inside_the_spring_forward_gap_opens_at_a_real_moment() -> None:
    window = SendWindow(days="sun", start=time(2, 30), end=time(4), holidays="none")
    opens = next_open(window, at("2026-03-28T12:00:00+01:00"))
    assert opens == at("2026-03-29T03:30:00+02:00")  # 02:30 does not exist that night
    assert is_open(window, opens)


def test_channels_follow_their_own_window_or_the_default() -> None:
    settings = DaemonSettings(windows={"sms": SendWindow(start=time(10), end=time(16))})
    nine = at("2026-12-14T09:30:00+01:00")
    assert open_channels(settings, ["email", "sms", "letter"], nine) == {"email", "letter"}
    assert next_opening(settings, ["sms"], nine) == at("2026-12-14T10:00:00+01:00")
    saturday = at("2026-12-12T10:00:00+01:00")
    assert open_channels(settings, ["email", "sms"], saturday) == set()
    assert next_opening(settings, [], saturday) == at("2026-12-14T09:00:00+01:00")


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        is_open(DEFAULT, datetime(2026, 12, 14, 10))
