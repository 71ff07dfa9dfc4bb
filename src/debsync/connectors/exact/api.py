"""Calls to Exact Online for one division: the bearer token with exactly one refresh after a
401, ``Accept: application/json``, ``__next`` followed one page at a time, and the
division's rate limits (60 calls a minute, the daily budget) read from ``X-RateLimit-*``.

Exact blocks an app after ten errors per endpoint an hour, so only transport errors, 429s
and 5xx are retried (the HTTP layer's policy); any other 4xx ends the call at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

import httpx

from debsync.connectors.exact.odata import decode, error_detail, next_url, results
from debsync.connectors.http import (
    FatalHttpError,
    HeaderLimiter,
    HttpClient,
    HttpFactory,
    PacingLimiter,
    RateLimiter,
    header_quota,
)

CALLS_PER_MINUTE = 60
RESET_MARGIN = 1.0
"""Seconds added to a reset Exact reports, for clock skew (picqer waits the same)."""


class Tokens(Protocol):
    """Where the bearer token comes from (``ExactOAuth``)."""

    async def access_token(self) -> str: ...

    async def after_unauthorized(self, rejected: str) -> str: ...


class DivisionLimits:
    """The quotas of one division, shared by every call to it in one process: paced to 60
    starts a minute, and held at a reset the headers report (minutely and daily)."""

    def __init__(self, calls_per_minute: int = CALLS_PER_MINUTE) -> None:
        minutely = header_quota(
            "X-RateLimit-Minutely-Remaining", "X-RateLimit-Minutely-Reset", unit="epoch_ms"
        )
        self.daily = HeaderLimiter(
            header_quota("X-RateLimit-Remaining", "X-RateLimit-Reset", unit="epoch_ms"),
            margin=RESET_MARGIN,
        )
        self.limiters: list[RateLimiter] = [
            PacingLimiter(calls_per_minute, per=60),
            HeaderLimiter(minutely, margin=RESET_MARGIN),
            self.daily,
        ]

    def daily_reset(self, now: datetime) -> datetime | None:
        """When the daily budget is full again, while it is used up; else ``None``."""
        wait = self.daily.delay(now)
        return now + timedelta(seconds=wait) if wait > 0 else None


class DivisionApi:
    """One HTTP client for one division (``division=None``: calls outside a division, such as
    ``current/Me``)."""

    def __init__(
        self,
        *,
        name: str,
        root: str,
        division: int | None,
        tokens: Tokens,
        http: HttpFactory,
        limits: DivisionLimits,
        secrets: list[str],
    ) -> None:
        self.division = division
        self.tokens = tokens
        self.limits = limits
        prefix = f"{root}/api/v1/" + (f"{division}/" if division is not None else "")
        self.client: HttpClient = http.client(
            name=name if division is None else f"{name} division {division}",
            base_url=prefix,
            headers={"Accept": "application/json"},
            limiters=limits.limiters,
            secrets=secrets,
            error_detail=error_detail,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One call with the bearer token; after a 401, one refresh and one more try."""
        token = await self.tokens.access_token()
        try:
            return await self._send(method, url, token, params, json)
        except FatalHttpError as exc:
            if exc.status != 401:
                raise
        token = await self.tokens.after_unauthorized(token)
        return await self._send(method, url, token, params, json)

    async def _send(
        self, method: str, url: str, token: str, params: Mapping[str, Any] | None, json: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if method == "POST":
            headers["Prefer"] = "return=representation"
        return await self.client.request(method, url, params=params, headers=headers, json=json)

    async def body(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON of a GET (numbers as ``Decimal``); another body is fatal (Exact
        answers XML when ``Accept`` is missing)."""
        response = await self.request("GET", url, params=params)
        return self._decode(response)

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return decode(response)
        except ValueError:
            kind = response.headers.get("Content-Type", "no Content-Type")
            raise FatalHttpError(
                f"{self.client.name}: {self.client.redactor.url(response.request.url)} "
                f"answered {kind}, not JSON",
                status=response.status_code,
            ) from None

    async def pages(
        self, url: str, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The records of every page, following ``__next`` sequentially (parallel paging
        returns duplicates); a ``__next`` already read is fatal, never a loop."""
        seen: set[str] = set()
        following: str | None = url
        while following is not None:
            response = await self.request("GET", following, params=params)
            seen.add(str(response.request.url))
            try:
                records = results(self._decode(response))
            except ValueError as exc:
                raise FatalHttpError(f"{self.client.name}: {url}: {exc}", status=None) from None
            yield records
            following, params = next_url(response), None
            if following is not None and str(response.request.url.join(following)) in seen:
                raise FatalHttpError(
                    f"{self.client.name}: {url}: the next page is one already read", status=None
                )
