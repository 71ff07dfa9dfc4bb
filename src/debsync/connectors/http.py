"""The HTTP layer of REST connectors: one client with the retry, pacing, redaction and error
policy every bookkeeping API needs, so a connector only says where to go and what a page is.

A connector gets its client from its context and keeps it for one ``fetch``::

    async with self.context.http.client(
        name=f"moneybird {self.instance}",
        base_url=f"https://moneybird.com/api/v2/{self.settings.administration_id}/",
        headers={"Authorization": f"Bearer {token}"},
        limiters=[PacingLimiter(150, per=300), HeaderLimiter(header_quota(...))],
    ) as http:
        async for response in http.paginate("sales_invoices.json", params={...}):
            ...

What the client does with an answer (the platforms in ``docs/plugins.md``):

==========================================  ================================================
answer                                      outcome
==========================================  ================================================
2xx                                         the response
429                                         waited out (``Retry-After``, else the limiters'
                                            quota, else backoff) and tried again
5xx, timeout, connection or protocol error  tried again after jittered exponential backoff;
                                            a write (POST, PATCH) only when nothing can have
                                            been processed (see ``IDEMPOTENT_METHODS``)
attempts used up                            :class:`RetryableHttpError`: the sync is retried
                                            later from its last cursor
a wait longer than ``max_wait``             :class:`RetryableHttpError` at once (a daily
                                            quota is not sat out in-process)
401, 402, 403, 404, any other 4xx, 3xx      :class:`FatalHttpError`, never retried: Exact
                                            Online blocks a key after ten errors an hour
==========================================  ================================================

Every log line and error message passes through the client's :class:`Redactor`: registered
secrets, credential headers and credential query parameters never reach the log, including
httpx's own request log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol, Self
from urllib.parse import quote, quote_plus

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential_jitter

from debsync.actions.http import USER_AGENT, retry_after, tls_context
from debsync.clock import Clock, system_clock
from debsync.errors import FatalConnectorError, RetryableConnectorError

Sleep = Callable[[float], Awaitable[None]]
"""How the client pauses; tests pass one that advances a fake clock instead of waiting."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods whose repetition changes nothing more (RFC 9110 §9.2.2): retried on a 5xx or a lost
answer. Any other request is retried only when it cannot have been processed (429, no
connection) unless the caller says it is idempotent (an ``Idempotency-Key``, say)."""

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
    | {"x-auth-token", "x-access-token"}
)
SENSITIVE_PARAMS = frozenset(
    {"access_token", "refresh_token", "id_token", "token", "api_key", "apikey", "key"}
    | {"client_secret", "password", "secret", "signature", "sig", "session"}
)
"""Query parameters whose value is a credential, whatever the connector registered."""

REDACTED = "[redacted]"
_SCHEME_TOKEN = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_PARAM_VALUE = re.compile(
    r"(?<![A-Za-z0-9_])(" + "|".join(sorted(SENSITIVE_PARAMS)) + r")=[^&\s#\"'<>]+",
    re.IGNORECASE,
)
_LIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()
"""Redactors of live clients: httpx's own log lines are redacted with all of them."""

log = logging.getLogger("debsync.connectors.http")


# -- redaction -------------------------------------------------------------------------------


class Redactor:
    """Removes secrets from text: every value registered with :meth:`add` (also as it appears
    percent-encoded in a URL), credentials after ``Bearer`` or ``Basic``, and the
    values of credential query parameters."""

    def __init__(self, secrets: Iterable[str | SecretStr | None] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)
        _LIVE.add(self)

    def add(self, secret: str | SecretStr | None) -> None:
        """Register a secret, e.g. a session token obtained mid-sync or a refreshed one."""
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value:
            self._secrets.update({value, quote(value, safe=""), quote_plus(value)})

    def add_header(self, value: str) -> None:
        """Register a credential header's value, and its token without the scheme."""
        self.add(value)
        scheme, _, credentials = value.partition(" ")
        if credentials and scheme.isalpha():
            self.add(credentials.strip())

    def text(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        text = _SCHEME_TOKEN.sub(rf"\1 {REDACTED}", text)
        return _PARAM_VALUE.sub(rf"\1={REDACTED}", text)

    def url(self, url: httpx.URL | str) -> str:
        """A URL as it may be logged: no password, no credential parameters."""
        parsed = httpx.URL(url)
        if parsed.password:
            parsed = parsed.copy_with(password=REDACTED)
        return self.text(str(parsed))


class _HttpxLogFilter(logging.Filter):
    """httpx logs every request with its full URL at INFO; this rewrites those lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for redactor in list(_LIVE):
            message = redactor.text(message)
        record.msg, record.args = message, None
        return True


logging.getLogger("httpx").addFilter(_HttpxLogFilter())


# -- errors ----------------------------------------------------------------------------------


class FatalHttpError(FatalConnectorError):
    """An answer that needs a person (credentials, subscription, URL, a refused request).

    :ivar status: the HTTP status, or ``None`` when the request could not be sent at all.
    """

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class RetryableHttpError(RetryableConnectorError):
    """The platform is down, slow or rate-limiting beyond what one sync should sit out.

    :ivar status: the last HTTP status, or ``None`` after a transport failure.
    :ivar retry_after: seconds the platform asked to wait, when it said.
    """

    def __init__(
        self, message: str, *, status: int | None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


_FATAL_HINTS = {
    400: "the platform refused the request",
    401: "credentials refused: check the token, or authorise debsync again",
    402: "payment required: the administration's subscription is not active",
    403: "forbidden: the credentials lack the rights (scope) for this request",
    404: "not found: check the URL and the administration or division id",
    405: "method not allowed: check the URL",
    406: "not acceptable: the platform cannot answer in the format asked for",
    422: "the platform refused the request as invalid",
}


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


# -- rate limiting ---------------------------------------------------------------------------


class RateLimiter(Protocol):
    """Decides when the next request may start. The client asks :meth:`delay` before every
    attempt, sleeps and asks again until it is 0, then calls :meth:`started`; nothing awaits
    in between, so concurrent requests of one client cannot overtake each other. Every answer
    (errors included) goes to :meth:`observe`. Share one limiter between the clients of one
    quota (one Exact division, one Moneybird token)."""

    def delay(self, now: datetime) -> float:
        """Seconds to wait before a request may start; 0 when it may start now."""
        ...

    def started(self, now: datetime) -> None:
        """A request starts now."""
        ...

    def observe(self, response: httpx.Response, now: datetime) -> None:
        """Learn from an answer: its rate-limit headers, say."""
        ...


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


# -- the client ------------------------------------------------------------------------------


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
            hint = _FATAL_HINTS.get(status, "the platform refused the request")
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
