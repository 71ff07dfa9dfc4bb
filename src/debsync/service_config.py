"""``[daemon]``, ``[http]`` and ``[web]`` in ``connectors.toml``: how the long-running
process schedules its work, when it may send, and where its one HTTP server listens.

Durations are written the way people write them (``sync_every = "15m"``, ``"90s"``,
``"2h"``; a bare number is minutes), times of day as ``"09:00"``, weekdays as ``"mon-fri"``
or ``"mon,wed,fri"``.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(value: Any) -> timedelta:
    """``"15m"``, ``"90s"``, ``"2h"``, ``"1d"``, or a number of minutes."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration such as 15 (minutes), '90s', '15m' or '2h'")
    if isinstance(value, int | float):
        return timedelta(minutes=value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a duration such as 15 (minutes), '90s', '15m', '2h'")
    return timedelta(**{_UNITS[match.group(2) or "m"]: int(match.group(1))})


def _weekdays(value: Any) -> tuple[int, ...]:
    """``"mon-fri"``, ``"mon,wed,fri"`` or a list of day names, as ISO weekdays 0–6."""
    if isinstance(value, tuple) and all(isinstance(d, int) for d in value):
        return value
    parts = value if isinstance(value, list) else str(value).split(",")
    days: set[int] = set()
    for part in (str(p).strip().lower() for p in parts):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(f"{part!r}: write days as 'mon-fri' or 'mon,wed,fri'")
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        if end < start:
            raise ValueError(f"{part!r}: a range runs forward in the week")
        days.update(range(start, end + 1))
    if not days:
        raise ValueError("names no day")
    return tuple(sorted(days))


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Weekdays = Annotated[tuple[int, ...], BeforeValidator(_weekdays)]


class SendWindow(BaseModel):
    """When messages may go out: on ``days`` from ``start`` to ``end`` local time, and (with
    ``holidays = "NL"``) never on a Dutch public holiday."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: Weekdays = Field(default=(0, 1, 2, 3, 4), description="Weekdays, e.g. 'mon-fri'.")
    start: time = Field(default=time(9), description="Opens at this local time ('09:00').")
    end: time = Field(default=time(17), description="Closes at this local time ('17:00').")
    timezone: str = Field(default="Europe/Amsterdam", description="An IANA time zone.")
    holidays: Literal["NL", "none"] = Field(
        default="NL", description="'NL': closed on Dutch public holidays; 'none': open."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone such as 'Europe/Amsterdam'"
            ) from None
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: time, info: Any) -> time:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be later than start")
        return value


class DaemonSettings(BaseModel):
    """``[daemon]``: the schedule of ``debsync run``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sync_every: Duration = Field(
        default=timedelta(minutes=15),
        description="How often each connector instance syncs (an instance's own "
        "sync_every overrides it).",
    )
    jitter: float = Field(
        default=0.1,
        ge=0,
        le=0.5,
        description="Each interval is lengthened or shortened by up to this fraction, so "
        "hundreds of instances do not all call their platforms at once.",
    )
    max_backoff: Duration = Field(
        default=timedelta(hours=4),
        description="The longest wait after repeated failures of one instance.",
    )
    send_window: SendWindow = Field(default_factory=SendWindow)
    windows: dict[str, SendWindow] = Field(
        default_factory=dict,
        description="A channel's own window (e.g. sms, call); other channels use send_window.",
    )
    shutdown_grace: Duration = Field(
        default=timedelta(seconds=30),
        description="On SIGTERM, how long work in flight may take before it is released.",
    )
    lease: Duration = Field(
        default=timedelta(seconds=60),
        description="A worker that has not sent a heartbeat for this long counts as dead.",
    )

    def window_for(self, channel: str) -> SendWindow:
        return self.windows.get(channel, self.send_window)


class HttpSettings(BaseModel):
    """``[http]``: the daemon's one HTTP server (health, metrics, webhooks, web console)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(
        default=8710, ge=0, le=65535, description="Port to listen on; 0: any free port."
    )
    public_url: str | None = Field(
        default=None,
        description="The base URL providers call, as they sign it (behind a reverse proxy).",
    )
    max_sync_age: Duration = Field(
        default=timedelta(hours=1),
        description="/readyz is unready when an instance's last successful sync is older.",
    )
    max_body: int = Field(
        default=1_000_000, ge=1024, description="Largest webhook body accepted, in bytes."
    )


class WebSettings(BaseModel):
    """``[web]``: the web console."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Mount the console on the HTTP server.")
    language: Literal["nl", "en"] = Field(default="nl", description="Default language.")
    session_lifetime: Duration = Field(default=timedelta(hours=12))
