"""Rate limiters: proactive pacing to a documented budget, and waiting out a quota the
platform reports in its response headers."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import httpx


class RateLimiter(Protocol):
    """Decides when the next request may start. The client asks :meth:`delay` before every
    attempt, sleeps and asks again until it is 0, then calls :meth:`started`; nothing awaits
    in between, so concurrent requests of one client cannot overtake each other. Every answer
    (errors included) goes to :meth:`observe`. Share one limiter between the clients of one
    quota (one Exact division, one Moneybird token)."""

    def delay(self, now: datetime) -> float:
        """Seconds to wait before a request may start; 0 when it may start now."""

    def started(self, now: datetime) -> None:
        """A request starts now."""

    def observe(self, response: httpx.Response, now: datetime) -> None:
        """Learn from an answer: its rate-limit headers, say."""


class PacingLimiter:
    """At most ``calls`` request starts in any ``per`` seconds, by waiting before the request
    that would exceed it: proactive, so a documented quota (Moneybird: 150 per 5 minutes)
    never produces a 429."""

    def __init__(self, calls: int, *, per: float) -> None:
        if calls < 1 or per <= 0:
            raise ValueError("a pacing limiter needs calls >= 1 and per > 0")
        self.calls = calls
        self.per = timedelta(seconds=per)
        self._starts: deque[datetime] = deque(maxlen=calls)
        """The last ``calls`` starts: the next may not be within ``per`` of the oldest."""

    def delay(self, now: datetime) -> float:
        if len(self._starts) < self.calls:
            return 0.0
        return max(0.0, (self._starts[0] + self.per - now).total_seconds())

    def started(self, now: datetime) -> None:
        self._starts.append(now)

    def observe(self, response: httpx.Response, now: datetime) -> None:
        """Pacing needs no answer."""


@dataclass(frozen=True)
class Quota:
    """What a platform says is left of one quota, and when it is full again."""

    remaining: int
    resets_at: datetime


QuotaReader = Callable[[httpx.Response, datetime], Quota | None]
"""The hook a connector writes for its platform: read one quota from an answer's headers
(``None`` when the answer does not carry it). :func:`header_quota` makes the common ones."""


ResetUnit = Literal["epoch_ms", "epoch_s", "seconds"]


_PER_SECOND = {"epoch_ms": 1000, "epoch_s": 1}


def header_quota(remaining: str, reset: str, *, unit: ResetUnit) -> QuotaReader:
    """A :data:`QuotaReader` for a pair of headers: the calls left, and the reset as epoch
    milliseconds (Exact Online's ``X-RateLimit-Reset``), epoch seconds (Moneybird's
    ``RateLimit-Reset``) or seconds from now (the IETF ``RateLimit-Reset``)."""

    def read(response: httpx.Response, now: datetime) -> Quota | None:
        left, at = response.headers.get(remaining), response.headers.get(reset)
        try:
            count, moment = int(left or ""), float(at or "")
            if unit == "seconds":
                return Quota(count, now + timedelta(seconds=moment))
            return Quota(count, datetime.fromtimestamp(moment / _PER_SECOND[unit], UTC))
        except (ValueError, OverflowError, OSError):  # a garbled header is no quota
            return None

    return read


class HeaderLimiter:
    """Paces by what the platform reports: when a quota read by one of ``readers`` has nothing
    left, the next request waits until its reset (plus ``margin`` seconds for clock skew).
    Requests started since the last answer count against the quota."""

    def __init__(self, *readers: QuotaReader, margin: float = 0.0) -> None:
        self.readers = readers
        self.margin = timedelta(seconds=margin)
        self._quotas: list[Quota | None] = [None] * len(readers)

    def delay(self, now: datetime) -> float:
        waits = [
            (quota.resets_at + self.margin - now).total_seconds()
            for quota in self._quotas
            if quota is not None and quota.remaining <= 0
        ]
        return max([0.0, *waits])

    def started(self, now: datetime) -> None:
        self._quotas = [
            Quota(q.remaining - 1, q.resets_at) if q is not None else None for q in self._quotas
        ]

    def observe(self, response: httpx.Response, now: datetime) -> None:
        for index, reader in enumerate(self.readers):
            quota = reader(response, now)
            if quota is not None:
                self._quotas[index] = quota
