"""The connectors' HTTP layer on respx: retries, pacing, redaction, error mapping, counters.

Time is a fake clock that the injected sleep advances, so no test waits and every wait the
client asked for is recorded and asserted exactly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import respx

from debsync.connectors.base import ConnectorContext
from debsync.connectors.http import (
    FatalHttpError,
    HeaderLimiter,
    HttpClient,
    HttpFactory,
    PacingLimiter,
    Quota,
    RetryableHttpError,
    header_quota,
)
from debsync.errors import FatalConnectorError, RetryableConnectorError

BASE = "https://api.example.nl/v1/"
T = TypeVar("T")


class FakeTime:
    """A clock that only the client's sleeps move."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would

    def epoch_ms(self, after: float = 0.0) -> str:
        return str(int((self.now.timestamp() + after) * 1000))


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def factory(time: FakeTime) -> HttpFactory:
    return HttpFactory(clock=time.clock, sleep=time.sleep, attempts=4)


@pytest.fixture
def api() -> Iterator[respx.Router]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def run(
    factory: HttpFactory,
    use: Callable[[HttpClient], Coroutine[Any, Any, T]],
    **options: Any,
) -> T:
    """Run ``use`` with a fresh client of ``factory``, closed afterwards."""

    async def main() -> T:
        async with factory.client(name="books", base_url=BASE, **options) as http:
            return await use(http)

    return asyncio.run(main())


def get(path: str = "invoices") -> Callable[[HttpClient], Coroutine[Any, Any, httpx.Response]]:
    async def use(http: HttpClient) -> httpx.Response:
        return await http.get(path)

    return use


def backoff_bounds(attempt: int) -> tuple[float, float]:
    """The jittered exponential wait after ``attempt`` with the factory's defaults (1 s)."""
    low = 2.0 ** (attempt - 1)
    return low, low + 1.0


# -- retries -------------------------------------------------------------------------------


def test_5xx_is_retried_with_backoff_then_succeeds(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    route = api.get("invoices").mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200, json=[1])]
    )
    client_stats = []

    async def use(http: HttpClient) -> Any:
        client_stats.append(http.stats)
        return (await http.get("invoices")).json()

    assert run(factory, use) == [1]
    assert route.call_count == 3
    assert len(time.slept) == 2
    for attempt, wait in enumerate(time.slept, start=1):
        low, high = backoff_bounds(attempt)
        assert low <= wait <= high
    (stats,) = client_stats
    assert (stats.calls, stats.retries, stats.rate_limit_waits) == (3, 2, 0)
    assert stats.backoff_seconds == pytest.approx(sum(time.slept))


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (400, "refused the request"),
        (404, "check the URL"),
        (405, "method not allowed"),
        (409, "refused the request"),
        (422, "refused the request as invalid"),
    ],
)
def test_other_4xx_are_fatal_and_never_retried(
    api: respx.Router, factory: HttpFactory, time: FakeTime, status: int, hint: str
) -> None:
    route = api.get("invoices").respond(status)
    with pytest.raises(FatalHttpError) as caught:
        run(factory, get())
    assert route.call_count == 1
    assert time.slept == []
    assert caught.value.status == status
    assert isinstance(caught.value, FatalConnectorError)
    assert f"books: GET {BASE}invoices answered {status}" in str(caught.value)
    assert hint in str(caught.value)


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, "credentials refused: check the token"),
        (402, "subscription is not active"),
        (403, "lack the rights (scope)"),
    ],
)
def test_credentials_and_subscription_refusals_are_fatal(
    api: respx.Router, factory: HttpFactory, status: int, hint: str
) -> None:
    route = api.get("invoices").respond(status)
    with pytest.raises(FatalHttpError, match=r"answered \d{3} [A-Za-z ]+: ") as caught:
        run(factory, get())
    assert route.call_count == 1
    assert hint in str(caught.value)


def test_error_detail_hook_adds_the_platforms_reason(
    api: respx.Router, factory: HttpFactory
) -> None:
    api.get("invoices").respond(400, json={"type": "validation", "code": "MUTA_006"})

    def code(response: httpx.Response) -> str | None:
        return str(response.json().get("code"))

    with pytest.raises(FatalHttpError, match=r"refused the request \(MUTA_006\)$"):
        run(factory, get(), error_detail=code)


def test_429_waits_exactly_the_retry_after_seconds(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    api.get("invoices").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200)]
    )
    assert run(factory, get()).status_code == 200
    assert time.slept == [7.0]
    assert factory.stats.rate_limit_waits == 1
    assert factory.stats.rate_limit_seconds == 7.0
    assert factory.stats.backoff_seconds == 0.0


def test_429_waits_until_an_http_date_retry_after(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    later = format_datetime(time.now + timedelta(seconds=30), usegmt=True)
    api.get("invoices").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": later}), httpx.Response(200)]
    )
    assert run(factory, get()).status_code == 200
    assert time.slept == [30.0]


def test_a_retry_after_beyond_max_wait_ends_the_sync_at_once(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    route = api.get("invoices").respond(429, headers={"Retry-After": "3600"})
    with pytest.raises(RetryableHttpError, match="asks to wait 3600 s") as caught:
        run(factory, get())
    assert route.call_count == 1
    assert time.slept == []
    assert (caught.value.status, caught.value.retry_after) == (429, 3600.0)


def test_transport_errors_are_retried(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    route = api.get("invoices").mock(
        side_effect=[
            httpx.ConnectError("connection refused"),
            httpx.ReadTimeout("timed out"),
            httpx.Response(200),
        ]
    )
    assert run(factory, get()).status_code == 200
    assert route.call_count == 3
    assert len(time.slept) == 2


def test_exhausted_retries_on_5xx_are_retryable(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    route = api.get("invoices").respond(500)
    with pytest.raises(RetryableHttpError) as caught:
        run(factory, get())
    assert route.call_count == 4  # the factory's attempts
    assert len(time.slept) == 3
    assert isinstance(caught.value, RetryableConnectorError)
    assert caught.value.status == 500
    assert str(caught.value) == f"books: GET {BASE}invoices: answered 500 (4 attempts)"
    assert (factory.stats.calls, factory.stats.retries) == (4, 3)


def test_exhausted_retries_on_transport_errors_are_retryable(
    api: respx.Router, factory: HttpFactory
) -> None:
    api.get("invoices").mock(side_effect=httpx.ConnectTimeout("timed out"))
    with pytest.raises(RetryableHttpError, match=r"ConnectTimeout \(timed out\) \(4 attempts\)"):
        run(factory, get())


def test_a_write_is_not_repeated_after_a_5xx_or_a_lost_answer(
    api: respx.Router, factory: HttpFactory
) -> None:
    route = api.post("notes").mock(side_effect=[httpx.Response(500), httpx.ReadError("reset")])

    async def post(http: HttpClient) -> httpx.Response:
        return await http.request("POST", "notes", json={"note": "herinnering"})

    with pytest.raises(RetryableHttpError, match="may have been processed") as caught:
        run(factory, post)
    assert caught.value.status == 500
    with pytest.raises(RetryableHttpError, match=r"ReadError.*may have been processed"):
        run(factory, post)
    assert route.call_count == 2


def test_a_write_is_repeated_when_it_cannot_have_been_processed_or_is_idempotent(
    api: respx.Router, factory: HttpFactory
) -> None:
    route = api.post("notes").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(201),
        ]
    )

    async def post(http: HttpClient) -> httpx.Response:
        return await http.request("POST", "notes", json={}, idempotent=True)

    assert run(factory, post).status_code == 201
    assert route.call_count == 4


# -- rate limiting -------------------------------------------------------------------------


def test_header_limiter_waits_until_the_reported_reset(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    """Exact Online: the minutely quota in headers, the reset in epoch milliseconds."""
    seen: list[datetime] = []

    def answer(left: int) -> Callable[[httpx.Request], httpx.Response]:
        def respond(request: httpx.Request) -> httpx.Response:
            seen.append(time.now)
            headers = {
                "X-RateLimit-Minutely-Remaining": str(left),
                "X-RateLimit-Minutely-Reset": time.epoch_ms(after=42),
            }
            return httpx.Response(200, headers=headers, json={"d": {"results": []}})

        return respond

    api.get("invoices").mock(side_effect=[answer(1), answer(0), answer(59)])
    limiter = HeaderLimiter(
        header_quota(
            "X-RateLimit-Minutely-Remaining", "X-RateLimit-Minutely-Reset", unit="epoch_ms"
        )
    )

    async def three(http: HttpClient) -> None:
        for _ in range(3):
            await http.get("invoices")

    run(factory, three, limiters=[limiter])
    start = seen[0]
    assert time.slept == [42.0]
    assert seen == [start, start, start + timedelta(seconds=42)]
    assert (factory.stats.rate_limit_waits, factory.stats.rate_limit_seconds) == (1, 42.0)


def test_a_429_without_retry_after_waits_for_the_header_reset(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    """Exact Online's 429 carries only the quota headers: the limiter's reset is the wait."""
    api.get("invoices").mock(
        side_effect=[
            httpx.Response(
                429,
                headers={
                    "X-RateLimit-Minutely-Remaining": "0",
                    "X-RateLimit-Minutely-Reset": time.epoch_ms(after=20),
                },
            ),
            httpx.Response(200),
        ]
    )
    limiter = HeaderLimiter(
        header_quota(
            "X-RateLimit-Minutely-Remaining", "X-RateLimit-Minutely-Reset", unit="epoch_ms"
        )
    )
    assert run(factory, get(), limiters=[limiter]).status_code == 200
    assert time.slept == [20.0]
    assert (factory.stats.retries, factory.stats.rate_limit_waits) == (1, 1)


def test_an_exhausted_daily_quota_is_not_sat_out(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    route = api.get("invoices").respond(
        200, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": time.epoch_ms(43_200)}
    )
    limiter = HeaderLimiter(
        header_quota("X-RateLimit-Remaining", "X-RateLimit-Reset", unit="epoch_ms")
    )

    async def two(http: HttpClient) -> None:
        await http.get("invoices")
        await http.get("invoices")

    with pytest.raises(RetryableHttpError, match="resets in 43200 s") as caught:
        run(factory, two, limiters=[limiter])
    assert route.call_count == 1
    assert time.slept == []
    assert caught.value.retry_after == 43_200.0


@pytest.mark.parametrize(
    ("unit", "value", "expected"),
    [
        ("epoch_ms", "1796126442000", datetime(2026, 12, 1, 12, 0, 42, tzinfo=UTC)),
        ("epoch_s", "1796126442", datetime(2026, 12, 1, 12, 0, 42, tzinfo=UTC)),
        ("seconds", "42", datetime(2026, 12, 1, 12, 0, 42, tzinfo=UTC)),
    ],
)
def test_header_quota_reads_each_reset_unit(
    time: FakeTime, unit: Any, value: str, expected: datetime
) -> None:
    read = header_quota("RateLimit-Remaining", "RateLimit-Reset", unit=unit)
    response = httpx.Response(200, headers={"RateLimit-Remaining": "3", "RateLimit-Reset": value})
    assert read(response, time.now) == Quota(3, expected)
    assert read(httpx.Response(200), time.now) is None
    for left, at in (("many", "1"), ("1", "nan"), ("1", "1e400")):
        garbled = httpx.Response(200, headers={"RateLimit-Remaining": left, "RateLimit-Reset": at})
        assert read(garbled, time.now) is None


@pytest.mark.parametrize("concurrent", [False, True])
def test_pacing_limiter_never_exceeds_n_per_window(
    api: respx.Router, factory: HttpFactory, time: FakeTime, concurrent: bool
) -> None:
    starts: list[datetime] = []

    def respond(request: httpx.Request) -> httpx.Response:
        starts.append(time.now)
        return httpx.Response(200)

    api.get("invoices").mock(side_effect=respond)
    limiter = PacingLimiter(3, per=10)

    async def many(http: HttpClient) -> None:
        if concurrent:
            await asyncio.gather(*(http.get("invoices") for _ in range(10)))
        else:
            for _ in range(10):
                await http.get("invoices")

    run(factory, many, limiters=[limiter])
    assert len(starts) == 10
    for first, fourth in zip(starts, starts[3:], strict=False):
        assert fourth - first >= timedelta(seconds=10)
    if not concurrent:  # and it waits no longer than needed
        assert starts[:3] == [starts[0]] * 3
        assert starts[9] - starts[0] == timedelta(seconds=30)


def test_pacing_and_header_limiters_combine(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    """Moneybird: 150 calls per 5 minutes, paced, and its RateLimit headers (epoch seconds)."""
    reset = str(int(time.now.timestamp()) + 100)
    api.get("contacts.json").respond(
        200, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": reset}
    )
    limiters = [
        PacingLimiter(150, per=300),
        HeaderLimiter(header_quota("RateLimit-Remaining", "RateLimit-Reset", unit="epoch_s")),
    ]

    async def two(http: HttpClient) -> None:
        await http.get("contacts.json")
        await http.get("contacts.json")

    run(factory, two, limiters=limiters)
    assert time.slept == [100.0]


# -- redaction -----------------------------------------------------------------------------

TOKEN = "tok-9f8e7d6c5b4a"
QUERY_TOKEN = "q+S3cr3t/value"
PASSWORD = "hunter2-really-secret"


def test_secrets_never_reach_the_log_or_the_error(
    api: respx.Router, factory: HttpFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.get("invoices").mock(
        side_effect=[
            httpx.ConnectError(f"cannot connect with Bearer {TOKEN}"),
            httpx.Response(503),
            httpx.Response(401, json={"error": f"invalid password {PASSWORD}"}),
        ]
    )

    def echo(response: httpx.Response) -> str | None:  # a careless hook: echoes the body
        return str(response.json()["error"])

    async def use(http: HttpClient) -> httpx.Response:
        return await http.get("invoices", params={"access_token": QUERY_TOKEN, "page": "2"})

    with pytest.raises(FatalHttpError) as caught:
        run(
            factory,
            use,
            headers={"Authorization": f"Bearer {TOKEN}"},
            secrets=[PASSWORD],
            error_detail=echo,
        )
    logged = caplog.text
    assert "HTTP Request: GET" in logged  # httpx's own line is there, redacted
    assert "attempt 1 of 4 failed" in logged
    for text in (logged, str(caught.value)):
        for secret in (TOKEN, QUERY_TOKEN, "q%2BS3cr3t%2Fvalue", PASSWORD):
            assert secret not in text
    assert "access_token=[redacted]&page=2" in str(caught.value)
    assert str(caught.value).endswith("(invalid password [redacted])")


def test_credentials_an_auth_flow_adds_are_redacted(
    api: respx.Router, factory: HttpFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A header set by an ``httpx.Auth`` (a refreshed token, say) is learnt from the request:
    the connector's own lines through ``redact`` lose it too."""
    caplog.set_level(logging.DEBUG)
    api.get("invoices").mock(side_effect=[httpx.Response(500), httpx.Response(403)])

    class ApiKey(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
            request.headers["X-Api-Key"] = PASSWORD
            yield request

    async def use(http: HttpClient) -> None:
        try:
            await http.get("invoices")
        finally:
            logging.getLogger("connector").warning("%s", http.redact(f"sent {PASSWORD}"))

    with pytest.raises(FatalHttpError) as caught:
        run(factory, use, auth=ApiKey())
    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(caught.value)
    assert "sent [redacted]" in caplog.text


# -- paging, JSON, counters, the context ---------------------------------------------------


def test_paginate_follows_next_links_and_stops_on_a_loop(
    api: respx.Router, factory: HttpFactory
) -> None:
    def page(number: int, following: int | None) -> httpx.Response:
        link = {"Link": f'<{BASE}invoices?page={following}>; rel="next"'} if following else {}
        return httpx.Response(200, headers=link, json=[number])

    api.get("invoices", params={"page": "1"}).mock(return_value=page(1, 2))
    api.get("invoices", params={"page": "2"}).mock(return_value=page(2, 3))
    api.get("invoices", params={"page": "3"}).mock(return_value=page(3, None))

    async def collect(http: HttpClient) -> list[Any]:
        return [r.json()[0] async for r in http.paginate("invoices", params={"page": "1"})]

    assert run(factory, collect) == [1, 2, 3]

    api.get("invoices", params={"page": "3"}).mock(return_value=page(3, 2))
    with pytest.raises(FatalHttpError, match="the next page is one already read"):
        run(factory, collect)


def test_offset_paging_through_a_custom_next_page(api: respx.Router, factory: HttpFactory) -> None:
    """e-Boekhouden: ``limit``/``offset`` until a page comes back short."""
    items = list(range(5))

    def respond(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"items": items[offset : offset + limit]})

    api.get("mutation/invoice/outstanding").mock(side_effect=respond)

    def next_offset(response: httpx.Response) -> httpx.URL | None:
        url = response.request.url
        limit = int(url.params["limit"])
        if len(response.json()["items"]) < limit:
            return None
        return url.copy_set_param("offset", int(url.params["offset"]) + limit)

    async def collect(http: HttpClient) -> list[int]:
        found: list[int] = []
        params = {"credDeb": "D", "limit": 2, "offset": 0}
        async for response in http.paginate(
            "mutation/invoice/outstanding", params=params, next_page=next_offset
        ):
            found += response.json()["items"]
        return found

    assert run(factory, collect) == items


def test_get_json_refuses_a_body_that_is_not_json(api: respx.Router, factory: HttpFactory) -> None:
    api.get("invoices").respond(
        200, text="<feed/>", headers={"Content-Type": "application/atom+xml"}
    )

    async def use(http: HttpClient) -> Any:
        return await http.get_json("invoices")

    with pytest.raises(FatalHttpError, match=r"answered 200 with application/atom\+xml, not JSON"):
        run(factory, use)


def test_counters_per_client_and_per_factory(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    api.get("a").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200)]
    )
    api.get("b").mock(side_effect=[httpx.Response(502), httpx.Response(200)])

    async def both() -> list[Any]:
        async with factory.client(name="a", base_url=BASE) as first:
            await first.get("a")
        async with factory.client(name="b", base_url=BASE) as second:
            await second.get("b")
        return [first.stats, second.stats]

    first, second = asyncio.run(both())
    assert (first.calls, first.retries, first.rate_limit_waits, first.rate_limit_seconds) == (
        2,
        1,
        1,
        2.0,
    )
    assert (second.calls, second.retries, second.rate_limit_waits) == (2, 1, 0)
    assert second.backoff_seconds == pytest.approx(time.slept[1])
    total = factory.stats
    assert (total.calls, total.retries, total.rate_limit_waits) == (4, 2, 1)
    assert total.backoff_seconds == second.backoff_seconds


def test_the_connector_context_brings_a_factory_by_default() -> None:
    first = ConnectorContext("books", Path("."))
    second = ConnectorContext(instance="books", config_dir=Path("."))
    assert isinstance(first.http, HttpFactory)
    assert first.http is not second.http  # counters per context
    assert first.http.stats.calls == 0


def test_a_request_that_cannot_be_sent_is_fatal_at_once(
    api: respx.Router, factory: HttpFactory, time: FakeTime
) -> None:
    route = api.get("invoices").mock(side_effect=httpx.LocalProtocolError("bad header"))
    with pytest.raises(FatalHttpError, match=r"cannot be sent: LocalProtocolError \(bad header\)"):
        run(factory, get())
    assert route.call_count == 1
    assert time.slept == []
