"""The connector HTTP client and the factory a connector gets it from (``context.http``);
see :mod:`debsync.connectors.http` for the policy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential_jitter

from debsync import metrics
from debsync.clock import Clock, system_clock
from debsync.connectors.http.errors import FATAL_HINTS, FatalHttpError, RetryableHttpError
from debsync.connectors.http.limits import RateLimiter
from debsync.connectors.http.redaction import SENSITIVE_HEADERS, SENSITIVE_PARAMS, Redactor
from debsync.http import USER_AGENT, retry_after, tls_context

Sleep = Callable[[float], Awaitable[None]]
"""How the client pauses; tests pass one that advances a fake clock instead of waiting."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods whose repetition changes nothing more (RFC 9110 §9.2.2): retried on a 5xx or a lost
answer. Any other request is retried only when it cannot have been processed (429, no
connection) unless the caller says it is idempotent (an ``Idempotency-Key``, say)."""


log = logging.getLogger("debsync.connectors.http")


_UNSENDABLE = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
"""Failures every repetition would meet: the URL or the request is wrong."""
_TRANSIENT = (httpx.TransportError, httpx.DecodingError)
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before the request left: even a write is safe to repeat."""
_MAY_BE_PROCESSED = "; the request may have been processed, so it is not repeated now"


class _Retry(Exception):
    """An attempt that may succeed when repeated: a signal to tenacity, never raised out of
    the client."""

    def __init__(self, reason: str, *, status: int | None, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait
        """Seconds the platform asked for (``Retry-After``), or ``None``."""


@dataclass
class HttpStats:
    """What one client (or all of a factory's) did: read by the daemon's metrics and the
    benchmarks.

    :ivar calls: requests sent, retries included.
    :ivar rate_limit_waits: pauses for a limiter or a 429; ``rate_limit_seconds`` their total.
    :ivar backoff_seconds: seconds of backoff after 5xx answers and transport failures.
    """

    calls: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    rate_limit_seconds: float = 0.0
    backoff_seconds: float = 0.0

    @classmethod
    def total(cls, many: Iterable[HttpStats]) -> HttpStats:
        result = cls()
        for stats in many:
            for item in fields(cls):
                setattr(result, item.name, getattr(result, item.name) + getattr(stats, item.name))
        return result


ErrorDetail = Callable[[httpx.Response], str | None]
"""Reads a short, safe reason from an error answer (a platform error code, say). Free text
from a platform may echo a debtor's data: return codes, not messages, where it does."""

NextPage = Callable[[httpx.Response], httpx.URL | str | None]
"""Where the page after this answer is, or ``None`` after the last one."""


def next_link(response: httpx.Response) -> str | None:
    """The ``Link: <…>; rel="next"`` target (Moneybird, GitHub-style APIs)."""
    return response.links.get("next", {}).get("url")


class HttpClient:
    """One ``httpx.AsyncClient`` with debsync's policy (module docstring). Use it as an async
    context manager, or call :meth:`aclose`. Made by :meth:`HttpFactory.client`."""

    def __init__(
        self,
        factory: HttpFactory,
        *,
        name: str,
        client: httpx.AsyncClient,
        limiters: Sequence[RateLimiter],
        redactor: Redactor,
        error_detail: ErrorDetail | None,
        logger: logging.Logger,
    ) -> None:
        self.name = name
        self.stats = HttpStats()
        self.redactor = redactor
        self.limiters = tuple(limiters)
        self._factory = factory
        self._client = client
        self._error_detail = error_detail
        self._log = logger
        self._backoff = wait_exponential_jitter(
            initial=factory.backoff, max=factory.max_backoff, jitter=factory.backoff
        )
        for header, value in client.headers.items():
            if header.lower() in SENSITIVE_HEADERS:
                redactor.add_header(value)
        for param, value in client.params.multi_items():
            if param.lower() in SENSITIVE_PARAMS:
                redactor.add(value)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def redact(self, text: str) -> str:
        """``text`` without this client's secrets: for the connector's own log lines."""
        return self.redactor.text(text)

    # -- requests ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one request under the policy and return its 2xx answer.

        :param idempotent: whether a repeat is harmless; default by ``method``
            (:data:`IDEMPOTENT_METHODS`).
        :raises FatalHttpError: an answer or failure no repetition can fix.
        :raises RetryableHttpError: still failing after the attempts, or asked to wait too long.
        """
        try:
            built = self._client.build_request(
                method, url, params=params, headers=headers, json=json, content=content
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise self._fatal(f"{method} {url}: not a usable URL ({exc})", None) from None
        safe = built.method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retry),
            stop=self._stop,
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            response: httpx.Response = await retrying(self._attempt, built, safe)
        except _Retry as exc:
            raise self._exhausted(built, exc, retrying.statistics["attempt_number"]) from None
        return response

    async def get(
        self,
        url: httpx.URL | str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.request("GET", url, params=params, headers=headers)

    async def get_json(
        self, url: httpx.URL | str, *, params: Mapping[str, Any] | None = None
    ) -> Any:
        """The decoded JSON body of a GET; a body that is not JSON is fatal (Exact Online
        answers XML when ``Accept: application/json`` is missing)."""
        response = await self.get(url, params=params)
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no Content-Type")
            where = self._where(response.request)
            raise self._fatal(
                f"{where} answered {response.status_code} with {kind}, not JSON", None
            ) from None

    async def paginate(
        self,
        url: httpx.URL | str,
        *,
        params: Mapping[str, Any] | None = None,
        next_page: NextPage = next_link,
    ) -> AsyncIterator[httpx.Response]:
        """GET ``url`` and every following page, one at a time (Exact Online returns
        duplicates to parallel paging). ``next_page`` reads where the next page is; its URL
        is used as given, so it must carry the query (``params`` apply to the first page)."""
        seen: set[str] = set()
        following: httpx.URL | str | None = url
        while following is not None:
            response = await self.get(following, params=params)
            seen.add(str(response.request.url))
            yield response
            following, params = next_page(response), None
            if following is not None and str(response.request.url.join(following)) in seen:
                where = self._where(response.request)
                raise self._fatal(f"{where}: the next page is one already read", None)

    # -- one attempt ---------------------------------------------------------------------

    async def _attempt(self, request: httpx.Request, safe: bool) -> httpx.Response:
        await self._pace(request)
        self.stats.calls += 1
        metrics.API_CALLS.labels(metrics.platform(self.name)).inc()
        try:
            response = await self._client.send(request)
        except httpx.RequestError as exc:
            self._learn(request)
            raise self._transport_failure(request, exc, safe) from None
        self._learn(request)
        now = self._factory.clock()
        for limiter in self.limiters:
            limiter.observe(response, now)
        status = response.status_code
        self._log.debug("%s: %s -> %d", self.name, self._where(request), status)
        if 200 <= status < 300:
            return response
        if status == 429 or (status >= 500 and safe):
            wait = retry_after(response.headers.get("Retry-After"), now)
            raise _Retry(f"answered {status}", status=status, wait=wait)
        raise self._refused(request, response)

    async def _pace(self, request: httpx.Request) -> None:
        """Wait until every limiter lets the request start."""
        factory = self._factory
        while wait := max([0.0, *(lim.delay(factory.clock()) for lim in self.limiters)]):
            if wait > factory.max_wait:
                raise self._retryable(
                    f"{self._where(request)}: the rate limit resets in {wait:.0f} s, longer "
                    "than this sync waits; it is tried again later",
                    None,
                    retry_after=wait,
                )
            self._log.info("%s: rate limit: waiting %.1f s", self.name, wait)
            self.stats.rate_limit_waits += 1
            self.stats.rate_limit_seconds += wait
            metrics.rate_limited(self.name, wait)
            await factory.sleep(wait)
        now = factory.clock()
        for limiter in self.limiters:
            limiter.started(now)

    def _learn(self, request: httpx.Request) -> None:
        """Register the credentials an ``httpx.Auth`` flow or the caller put on the request."""
        for header, value in request.headers.items():
            if header.lower() in SENSITIVE_HEADERS:
                self.redactor.add_header(value)
        for param, value in request.url.params.multi_items():
            if param.lower() in SENSITIVE_PARAMS:
                self.redactor.add(value)

    def _transport_failure(
        self, request: httpx.Request, exc: httpx.RequestError, safe: bool
    ) -> Exception:
        detail = self.redact(str(exc))
        reason = type(exc).__name__ + (f" ({detail})" if detail else "")
        if isinstance(exc, _UNSENDABLE) or not isinstance(exc, _TRANSIENT):
            return self._fatal(f"{self._where(request)}: cannot be sent: {reason}", None)
        unsent = isinstance(exc, _UNSENT)
        if safe or unsent:
            return _Retry(reason, status=None)
        return self._retryable(f"{self._where(request)}: {reason}{_MAY_BE_PROCESSED}", None)

    def _refused(self, request: httpx.Request, response: httpx.Response) -> Exception:
        status = response.status_code
        if status >= 500:  # a write that may have been processed
            return self._retryable(
                f"{self._where(request)} answered {status}{_MAY_BE_PROCESSED}", status
            )
        if 300 <= status < 400:
            hint = "redirected: check the base URL"
        else:
            hint = FATAL_HINTS.get(status, "the platform refused the request")
        detail = self._error_detail(response) if self._error_detail else None
        reason = f"answered {status} {response.reason_phrase}".rstrip()
        message = f"{self._where(request)} {reason}: {hint}" + (f" ({detail})" if detail else "")
        return self._fatal(message, status)

    # -- tenacity hooks ------------------------------------------------------------------

    def _failure(self, state: RetryCallState) -> _Retry:
        exc = state.outcome.exception() if state.outcome else None
        assert isinstance(exc, _Retry)  # retry_if_exception_type(_Retry) let only these through
        return exc

    def _stop(self, state: RetryCallState) -> bool:
        failure = self._failure(state)
        too_long = failure.wait is not None and failure.wait > self._factory.max_wait
        return too_long or state.attempt_number >= self._factory.attempts

    def _wait(self, state: RetryCallState) -> float:
        """``Retry-After`` when given; after a 429 without it, whatever the limiters say
        (Exact Online sends its reset only as a header); otherwise backoff."""
        failure = self._failure(state)
        if failure.wait is not None:
            return failure.wait
        now = self._factory.clock()
        if failure.status == 429 and any(lim.delay(now) > 0 for lim in self.limiters):
            return 0.0
        return float(self._backoff(state))

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:  # 0 after a 429 the limiters wait out in _pace
            await self._factory.sleep(seconds)

    def _before_sleep(self, state: RetryCallState) -> None:
        failure = self._failure(state)
        wait = state.upcoming_sleep
        self.stats.retries += 1
        if failure.status != 429:
            self.stats.backoff_seconds += wait
        elif wait > 0:
            self.stats.rate_limit_waits += 1
            self.stats.rate_limit_seconds += wait
            metrics.rate_limited(self.name, wait)
        request: httpx.Request = state.args[0]
        self._log.warning(
            "%s: %s: %s; attempt %d of %d failed, next in %.1f s",
            self.name,
            self._where(request),
            self.redact(failure.reason),
            state.attempt_number,
            self._factory.attempts,
            wait,
        )

    # -- messages --------------------------------------------------------------------------

    def _where(self, request: httpx.Request) -> str:
        return f"{request.method} {self.redactor.url(request.url)}"

    def _fatal(self, message: str, status: int | None) -> FatalHttpError:
        return FatalHttpError(self.redact(f"{self.name}: {message}"), status=status)

    def _retryable(
        self, message: str, status: int | None, *, retry_after: float | None = None
    ) -> RetryableHttpError:
        return RetryableHttpError(
            self.redact(f"{self.name}: {message}"), status=status, retry_after=retry_after
        )

    def _exhausted(self, request: httpx.Request, failure: _Retry, attempts: int) -> Exception:
        if failure.wait is not None and failure.wait > self._factory.max_wait:
            text = (
                f"{self._where(request)} {failure.reason} and asks to wait {failure.wait:.0f} s, "
                "longer than this sync waits; it is tried again later"
            )
        else:
            text = f"{self._where(request)}: {failure.reason} ({attempts} attempts)"
        return self._retryable(text, failure.status, retry_after=failure.wait)


@dataclass(frozen=True)
class HttpFactory:
    """Makes :class:`HttpClient` s with one policy; handed to connectors as
    ``ConnectorContext.http``.

    :param timeout: seconds for a whole read or write; ``connect_timeout`` for connecting.
    :param attempts: tries per request, the first included.
    :param backoff: seconds before the first retry (doubling, plus up to as much jitter),
        at most ``max_backoff``.
    :param max_wait: the longest pause (``Retry-After`` or a limiter) one request sits out;
        a longer one ends the sync with :class:`RetryableHttpError`.
    :param clock: what the limiters and ``Retry-After`` dates are measured against; with
        ``sleep`` injectable so tests do not wait.
    :param transport: an ``httpx`` transport to use instead of the network.
    """

    timeout: float = 30.0
    connect_timeout: float = 10.0
    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_wait: float = 300.0
    clock: Clock = system_clock
    sleep: Sleep = asyncio.sleep
    transport: httpx.AsyncBaseTransport | None = None
    _made: list[HttpStats] = field(default_factory=list, repr=False, compare=False)

    def client(
        self,
        *,
        name: str,
        base_url: httpx.URL | str = "",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        limiters: Sequence[RateLimiter] = (),
        secrets: Iterable[str | SecretStr | None] = (),
        error_detail: ErrorDetail | None = None,
        logger: logging.Logger = log,
    ) -> HttpClient:
        """A client for one platform account.

        :param name: who is talking, in every message: ``moneybird acme``.
        :param headers: sent with every request; credential headers are redacted.
        :param auth: an ``httpx.Auth`` for tokens that refresh (its flow retries a 401).
        :param secrets: further values never to log (a client secret, a password).
        :param error_detail: reads a safe reason from an error answer for the message.
        """
        client = httpx.AsyncClient(
            base_url=base_url,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            params=params,
            auth=auth,
            timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
            verify=tls_context(),
            follow_redirects=False,
            transport=self.transport,
        )
        made = HttpClient(
            self,
            name=name,
            client=client,
            limiters=limiters,
            redactor=Redactor(secrets),
            error_detail=error_detail,
            logger=logger,
        )
        self._made.append(made.stats)
        return made

    @property
    def stats(self) -> HttpStats:
        """The totals of every client this factory made."""
        return HttpStats.total(self._made)
