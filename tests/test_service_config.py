"""``[daemon]``, ``[http]`` and ``[web]``: defaults, durations and windows as people write
them, and errors that name the key."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from debsync.config import Config, load_config
from debsync.errors import ConfigError
from debsync.plugins import Plugins
from debsync.service_config import DaemonSettings, SendWindow, parse_duration

BASE = """
[connectors.books]
type = "csv"
path = "open-items.csv"
"""


def _load(tmp_path: Path, text: str) -> Config:
    (tmp_path / "connectors.toml").write_text(BASE + text, encoding="utf-8")
    return load_config(tmp_path / "connectors.toml", Plugins(entry_points=False))


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        (15, timedelta(minutes=15)),
        ("15m", timedelta(minutes=15)),
        ("90s", timedelta(seconds=90)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        (" 5 ", timedelta(minutes=5)),
    ],
)
def test_durations_read_as_people_write_them(written: object, meant: timedelta) -> None:
    assert parse_duration(written) == meant


@pytest.mark.parametrize("written", ["15 minutes", "-5m", "m", True, "1w"])
def test_a_duration_that_is_none_is_refused(written: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(written)


def test_defaults_are_the_dutch_office_week() -> None:
    daemon = DaemonSettings()
    window = daemon.send_window
    assert (window.days, window.start, window.end) == ((0, 1, 2, 3, 4), time(9), time(17))
    assert (window.timezone, window.holidays) == ("Europe/Amsterdam", "NL")
    assert daemon.sync_every == timedelta(minutes=15)
    assert daemon.window_for("sms") is window


def test_weekdays_as_ranges_and_lists() -> None:
    assert SendWindow.model_validate({"days": "mon,wed,fri"}).days == (0, 2, 4)
    assert SendWindow.model_validate({"days": ["sat", "sun"]}).days == (5, 6)
    assert SendWindow.model_validate({"days": "tue-thu"}).days == (1, 2, 3)


def test_settings_reach_the_config_with_an_instances_own_interval(tmp_path: Path) -> None:
    (tmp_path / "open-items.csv").write_text("", encoding="utf-8")
    config = _load(
        tmp_path,
        """sync_every = "5m"

[daemon]
sync_every = "30m"
windows.sms = { days = "mon-sat", start = "10:00", end = "20:00" }

[http]
port = 9000
max_sync_age = "2h"

[web]
language = "en"
""",
    )
    assert config.sync_every("books") == timedelta(minutes=5)
    assert config.daemon.window_for("sms").end == time(20)
    assert config.daemon.window_for("email").end == time(17)
    assert config.http.port == 9000
    assert config.http.max_sync_age == timedelta(hours=2)
    assert config.web.language == "en"


def test_errors_name_the_table_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as failure:
        _load(
            tmp_path,
            """sync_every = "often"

[daemon.send_window]
days = "fri-mon"
start = "17:00"
end = "09:00"
timezone = "Europe/Amsterdan"

[http]
port = 70000
""",
        )
    text = str(failure.value)
    assert "connectors.books.sync_every" in text and "'often' is not a duration" in text
    assert "daemon.send_window.days" in text and "runs forward" in text
    assert "daemon.send_window.end" in text and "later than start" in text
    assert "daemon.send_window.timezone" in text and "IANA" in text
    assert "http.port" in text
