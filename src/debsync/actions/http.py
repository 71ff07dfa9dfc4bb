"""The HTTP layer every HTTP action shares: the client, the channel and what a failure means.

One ``httpx.AsyncClient`` per batch (:class:`HttpChannel`), built by :func:`http_client` with
debsync's user agent and one TLS context per process; ``Retry-After`` read once
(:func:`retry_after`). The webhook and agency actions add signed JSON requests to a receiver
of debsync's own protocols (:class:`SignedChannel`, :class:`SignedHttpAction`); the SMS
gateways send their providers' requests through a plain :class:`HttpChannel`.

Transport failures, one policy, decided by what is knowable when the exchange broke off:

* **the request cannot be sent as configured** (``UnsupportedProtocol``,
  ``LocalProtocolError``): :class:`ActionUnavailableError`, every request would fail alike;
* **no connection** (refused, DNS, TLS, connect timeout, proxy): nothing was sent; the
  channel is down for the run, or the message is retried (below);
* **no free connection in the pool, or the request broke off while being written**:
  :class:`RetryableActionError`, the receiver cannot have a complete request;
* **after the request was sent** (read timeout, connection dropped, an undecodable answer):
  a safe method (GET, HEAD) changed nothing, so :class:`RetryableActionError`; anything else
  may have been processed, so :class:`OutcomeUnknownError`.

The outbox settles an unknown outcome by itself only for an idempotent action (the webhook
and the agency deduplicate on ``Idempotency-Key``); a non-idempotent one (SMS) waits for a
person. A failed connection proves nothing was delivered either way; what it does not say is
whether the next message would fare better. ``unreachable_stops_channel`` is that choice, made
by the action that knows its endpoint: a webhook receiver or an agency is the one host
configured for this instance, so when it refuses connections every message in the batch would
fail alike, and the run stops using it without spending attempts; an SMS provider's gateway
is a large, load-balanced front where a failed connection is one transient path, so the text
is retried with backoff and the batch goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any, Self, TypeVar

import httpx
from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from debsync.actions.base import (
    Action,
    ActionEnvironment,
    ActionError,
    ActionSettings,
    ActionUnavailableError,
    OutcomeUnknownError,
    PermanentActionError,
    RetryableActionError,
)
from debsync.actions.signing import SIGNATURE_HEADER, sign
from debsync.clock import Clock
from debsync.http import USER_AGENT, retry_after, tls_context

SAFE_METHODS = frozenset({"GET", "HEAD"})
"""Methods that change nothing at the receiver (RFC 9110 §9.2.1): a lost answer is retried."""


def http_client(
    timeout: float,
    headers: Mapping[str, str],
    *,
    base_url: str = "",
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """A client for one batch. Redirects are not followed: a redirected POST would lose its
    body or its meaning, so a 3xx is the caller's to judge."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT, **headers},
        auth=auth,
        verify=tls_context(),
        follow_redirects=False,
    )


def transport_failure(
    exc: httpx.RequestError, request: httpx.Request, name: str, *, unreachable_stops_channel: bool
) -> ActionError:
    """The outcome of a request that got no answer, by the policy in the module docstring."""
    what = f"{name}: {request.method} {request.url.path}: {type(exc).__name__}"
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return ActionUnavailableError(f"{what}; the request cannot be sent: check the URL")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)):
        unreachable = f"{what}; cannot reach {request.url.host}"
        if unreachable_stops_channel:
            return ActionUnavailableError(unreachable)
        return RetryableActionError(f"{unreachable}: nothing was sent")
    if isinstance(exc, (httpx.PoolTimeout, httpx.WriteError, httpx.WriteTimeout)):
        return RetryableActionError(f"{what}; the request did not get out")
    if request.method in SAFE_METHODS:
        return RetryableActionError(f"{what}; a read changes nothing, so it is tried again")
    resend = (
        " (a resend with the same Idempotency-Key is safe)"
        if "Idempotency-Key" in request.headers
        else ""
    )
    return OutcomeUnknownError(f"{what}; the request may have been processed{resend}")


class HttpChannel:
    """One ``httpx.AsyncClient`` per batch (or per request outside one), and the transport
    policy applied to every exchange.

    :param new_client: builds the batch's client (base URL, credentials, headers).
    :param name: who is talking, for error messages: ``action sales``, ``CM.com``.
    """

    def __init__(
        self,
        new_client: Callable[[], httpx.AsyncClient],
        *,
        name: str,
        unreachable_stops_channel: bool,
    ) -> None:
        self._new_client = new_client
        self.name = name
        self.unreachable_stops_channel = unreachable_stops_channel
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = self._new_client()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def exchange(self, build: Callable[[httpx.AsyncClient], httpx.Request]) -> httpx.Response:
        """Send the request ``build`` makes with the client; a request without an answer
        raises the :class:`ActionError` the policy gives it."""
        if self._client is not None:
            return await self._send(self._client, build(self._client))
        async with self._new_client() as client:
            return await self._send(client, build(client))

    async def _send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        try:
            return await client.send(request)
        except httpx.RequestError as exc:
            raise transport_failure(
                exc, request, self.name, unreachable_stops_channel=self.unreachable_stops_channel
            ) from exc


SettingsT = TypeVar("SettingsT", bound=ActionSettings)


class HttpAction(Action[SettingsT]):
    """An action whose batch shares one :class:`HttpChannel`: it opens with the batch
    (``async with action:``) and closes after it. Subclasses set ``_http`` in ``__init__``."""

    _http: HttpChannel

    async def __aenter__(self) -> Self:
        await self._http.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.close()


# -- signed requests to a receiver of debsync's protocols (webhook, agency) -------------------

RESERVED_HEADERS = frozenset(
    {"authorization", "content-length", "content-type", "host", "idempotency-key"}
    | {SIGNATURE_HEADER.lower()}
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110)
_SAFE_CODE = re.compile(r"^[A-Za-z0-9_.:/\[\]-]{1,64}$")


def _http_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError("must be an https:// URL with a host")
    if url.userinfo:
        raise ValueError("credentials do not belong in the URL; use token")
    if url.query or url.fragment:
        raise ValueError("must not carry a query or fragment")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class SignedHttpSettings(ActionSettings):
    """What both signed HTTP actions share: the signing secret, credentials, headers,
    timeout."""

    secret: SecretStr = Field(
        description="Shared secret for the Debsync-Signature HMAC (at least 16 characters; "
        'e.g. 32 random bytes in hex); give a reference such as { env = "AGENCY_SECRET" }.'
    )
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token sent as Authorization: Bearer <token>, if the receiver "
        "wants one besides the signature.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description='Extra request headers, e.g. { X-Tenant = "acme" }. Not for secrets '
        "(they would sit in connectors.toml): use token. Authorization, Content-Type, "
        "Idempotency-Key and Debsync-Signature are set by debsync.",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds to wait for the connection and for the answer; keep it below "
        "[outbox] lease_seconds.",
    )
    allow_insecure: bool = Field(
        default=False,
        description="Allow a plain http:// URL (personal data and the signature travel "
        "unencrypted). Only for a receiver on the same host or a trusted network.",
    )

    @property
    def endpoint(self) -> str:
        """The configured URL; each action names its own field."""
        raise NotImplementedError

    @field_validator("secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (use 32 random bytes in hex)")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"{name} is set by debsync")
            if "\r" in text or "\n" in text:
                raise ValueError(f"the value of {name} contains a line break")
        return value

    @model_validator(mode="after")
    def _secure(self) -> Self:
        if httpx.URL(self.endpoint).scheme == "http" and not self.allow_insecure:
            raise ValueError(
                "an http:// URL sends personal data unencrypted; use https://, or set "
                "allow_insecure = true to confirm"
            )
        return self


def safe_code(value: object) -> str | None:
    """``value`` if it is a short machine code or field path (``below_minimum``,
    ``debtor.address.postal_code``), else ``None``: free text may carry personal data."""
    return value if isinstance(value, str) and _SAFE_CODE.match(value) else None


def error_codes(response: httpx.Response) -> list[str]:
    """The receiver's reasons from ``{"errors": [{"code": …, "field": …}]}``: codes and field
    paths only. Messages are dropped because receivers echo the debtor's data in them."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return []
    if not isinstance(errors, list):
        return []
    found = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        code, field = safe_code(error.get("code")), safe_code(error.get("field"))
        if code is not None:
            found.append(f"{code} ({field})" if field else code)
    return found


@dataclass(frozen=True)
class Posted:
    """A POST's answer and the exact bytes that were sent (their hash goes in the receipt)."""

    response: httpx.Response
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class SignedChannel(HttpChannel):
    """Signed JSON requests to one receiver of debsync's protocols. A receiver that refuses
    connections is down for the run (see the module docstring); every POST carries the
    outbox key as ``Idempotency-Key``, so an unknown outcome is settled by resending."""

    def __init__(self, instance: str, settings: SignedHttpSettings, clock: Clock) -> None:
        super().__init__(
            lambda: http_client(settings.timeout, settings.headers),
            name=f"action {instance}",
            unreachable_stops_channel=True,
        )
        self.settings = settings
        self.clock = clock

    def _headers(self, content: bytes) -> dict[str, str]:
        headers = {SIGNATURE_HEADER: sign(self.settings.secret, content, self.clock())}
        if self.settings.token is not None:
            headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"
        return headers

    async def post_json(self, url: str, body: Mapping[str, Any], key: str) -> Posted:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            **self._headers(content),
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        }
        response = await self.exchange(
            lambda client: client.build_request("POST", url, content=content, headers=headers)
        )
        return Posted(response, content)

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        headers = {**self._headers(b""), "Accept": "application/json"}
        return await self.exchange(
            lambda client: client.build_request("GET", url, headers=headers, params=params)
        )

    def failure(self, response: httpx.Response) -> ActionError:
        """The error for an answer that is neither a success nor one the caller handles."""
        code = response.status_code
        where = f"{self.name}: {response.request.method} {response.request.url.path}"
        where += f" answered {code}"
        if code in (401, 403):
            return ActionUnavailableError(f"{where}: credentials refused; check secret and token")
        if code in (408, 425, 429) or code >= 500:
            wait = retry_after(response.headers.get("Retry-After"), self.clock())
            return RetryableActionError(where, retry_after=wait)
        if 300 <= code < 400 or code in (404, 405, 410):
            return ActionUnavailableError(f"{where}: check the URL")
        reasons = error_codes(response)
        return PermanentActionError(where + (f": {', '.join(reasons)}" if reasons else ""))


SignedSettingsT = TypeVar("SignedSettingsT", bound=SignedHttpSettings)


class SignedHttpAction(HttpAction[SignedSettingsT]):
    """An action that talks to one signed HTTP endpoint through its :class:`SignedChannel`."""

    _http: SignedChannel

    def __init__(self, instance: str, settings: SignedSettingsT, env: ActionEnvironment) -> None:
        super().__init__(instance, settings, env)
        self._http = SignedChannel(instance, settings, env.clock)
