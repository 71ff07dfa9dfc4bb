"""Signed webhooks (``type = "webhook"``): a ``debsync.event/v1`` JSON event per dunning step.

Other systems learn what debsync did, e.g. so a sales team stops delivering to a debtor who
got an aanmaning. The event carries ids, invoice numbers, amounts and the deadline; the
debtor's name only with ``include_names = true`` (data minimisation). docs/actions/webhook.md
documents the event and how to verify it.

This module also holds the HTTP side the agency action (``debsync.actions.agency``) shares:
one client per batch, signed JSON requests (``debsync.actions.signing``), and the mapping of
HTTP answers and transport failures to what the outbox does next. Both actions are
idempotent: every request carries the outbox key as ``Idempotency-Key`` (and the event its
``id``), which is stable across retries, so the receiver deduplicates and a resend is safe.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from functools import cache
from types import TracebackType
from typing import Annotated, Any, ClassVar, Self, TypeVar

import httpx
from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from debsync import __version__, hookimpl
from debsync.actions.base import (
    Action,
    ActionEnvironment,
    ActionError,
    ActionSettings,
    ActionUnavailableError,
    MessageContext,
    OutcomeUnknownError,
    Payload,
    PermanentActionError,
    Receipt,
    RetryableActionError,
)
from debsync.actions.signing import SIGNATURE_HEADER, sign
from debsync.hookspecs import RegisterAction
from debsync.model import quantize

EVENT_SCHEMA = "debsync.event/v1"
USER_AGENT = f"debsync/{__version__}"
RESERVED_HEADERS = frozenset(
    {"authorization", "content-length", "content-type", "host", "idempotency-key"}
    | {SIGNATURE_HEADER.lower()}
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110)
_SAFE_CODE = re.compile(r"^[A-Za-z0-9_.:/\[\]-]{1,64}$")


def utc_timestamp(moment: datetime) -> str:
    """``2026-11-22T10:15:00Z``: the timestamp form of both payloads."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: debsync only handles timezone-aware moments")
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def amount_text(value: Decimal, currency: str) -> str:
    """A decimal string in the currency's minor unit (``"1234.50"`` for EUR): no float."""
    return str(quantize(value, currency))


def optional_amount(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else amount_text(value, currency)


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
    """What both HTTP actions share: the signing secret, credentials, headers, timeout."""

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


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


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


@cache
def _tls() -> ssl.SSLContext:
    """httpx's default verification (the certifi bundle), loaded once per process rather than
    once per batch: loading the bundle costs more than a typical request."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class Posted:
    """A POST's answer and the exact bytes that were sent (their hash goes in the receipt)."""

    response: httpx.Response
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class HttpChannel:
    """One ``httpx.AsyncClient`` per batch (or per request outside one); every request signed.

    Failures become the errors the outbox acts on. Transport: no connection (refused, DNS,
    TLS, connect timeout) means the channel is down for the run; a request that cannot have
    been processed (pool or write timeout) is retried; a POST whose answer was lost (read
    timeout, connection dropped) has an unknown outcome, which the outbox retries on its own
    because both actions are idempotent. A GET changes nothing, so a lost answer is retried.
    """

    def __init__(self, instance: str, settings: SignedHttpSettings, env: ActionEnvironment) -> None:
        self.instance = instance
        self.settings = settings
        self.env = env
        self._client: httpx.AsyncClient | None = None

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.timeout,
            follow_redirects=False,  # a redirected POST would lose its body or its meaning
            verify=_tls(),
            headers={"User-Agent": USER_AGENT, **self.settings.headers},
        )

    async def open(self) -> None:
        if self._client is None:
            self._client = self._new_client()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _headers(self, content: bytes) -> dict[str, str]:
        headers = {SIGNATURE_HEADER: sign(self.settings.secret, content, self.env.clock())}
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
        response = await self._request("POST", url, content=content, headers=headers)
        return Posted(response, content)

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        headers = {**self._headers(b""), "Accept": "application/json"}
        return await self._request("GET", url, headers=headers, params=params)

    async def _request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            if self._client is not None:
                return await self._client.request(
                    method, url, content=content, headers=headers, params=params
                )
            async with self._new_client() as client:
                return await client.request(
                    method, url, content=content, headers=headers, params=params
                )
        except httpx.RequestError as exc:
            raise self._transport_failure(exc, method, url) from exc

    def _transport_failure(self, exc: httpx.RequestError, method: str, url: str) -> ActionError:
        what = f"action {self.instance}: {method} {httpx.URL(url).path}: {type(exc).__name__}"
        unreachable = (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.ProxyError,
            httpx.UnsupportedProtocol,
            httpx.LocalProtocolError,
        )
        if isinstance(exc, unreachable):
            return ActionUnavailableError(f"{what}; cannot reach {httpx.URL(url).host}")
        if method != "POST":
            return RetryableActionError(f"{what}; a read changes nothing, so it is tried again")
        if isinstance(exc, (httpx.PoolTimeout, httpx.WriteTimeout, httpx.WriteError)):
            return RetryableActionError(f"{what}; the request did not get out")
        return OutcomeUnknownError(
            f"{what}; the request may have been processed (a resend with the same "
            "Idempotency-Key is safe)"
        )

    def failure(self, response: httpx.Response) -> ActionError:
        """The error for an answer that is neither a success nor one the caller handles."""
        code = response.status_code
        where = f"action {self.instance}: {response.request.method} {response.request.url.path}"
        where += f" answered {code}"
        if code in (401, 403):
            return ActionUnavailableError(f"{where}: credentials refused; check secret and token")
        if code in (408, 425, 429) or code >= 500:
            wait = retry_after(response.headers.get("Retry-After"), self.env.clock())
            return RetryableActionError(where, retry_after=wait)
        if 300 <= code < 400 or code in (404, 405, 410):
            return ActionUnavailableError(f"{where}: check the URL")
        reasons = error_codes(response)
        return PermanentActionError(where + (f": {', '.join(reasons)}" if reasons else ""))


class WebhookSettings(SignedHttpSettings):
    """``type = "webhook"``: POST a signed event per step to one URL."""

    url: HttpUrl = Field(description="Where each event is POSTed (https://).")
    include_names: bool = Field(
        default=False,
        description="Put the debtor's name in the event; off by default (data minimisation: "
        "the debtor id is usually enough for the receiver to look the debtor up).",
    )

    @property
    def endpoint(self) -> str:
        return self.url


SignedSettingsT = TypeVar("SignedSettingsT", bound=SignedHttpSettings)


class SignedHttpAction(Action[SignedSettingsT]):
    """An action that talks to one signed HTTP endpoint: its :class:`HttpChannel` opens with
    the batch (``async with action:``) and closes after it."""

    def __init__(self, instance: str, settings: SignedSettingsT, env: ActionEnvironment) -> None:
        super().__init__(instance, settings, env)
        self._http = HttpChannel(instance, settings, env)

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


class WebhookAction(SignedHttpAction[WebhookSettings]):
    """One ``dunning.step`` event per message; a 2xx (or 409: already received) delivers it."""

    type_name: ClassVar[str] = "webhook"
    Settings: ClassVar[type[ActionSettings]] = WebhookSettings
    channel: ClassVar[str] = "webhook"
    idempotent: ClassVar[bool] = True  # receivers deduplicate on the event id (the outbox key)

    def render(self, context: MessageContext) -> Payload:
        currency = context.currency
        debtor: dict[str, Any] = {
            "id": context.debtor.external_id,
            "kind": context.debtor.kind.value,
        }
        if self.settings.include_names:
            debtor["name"] = context.debtor.name
        return {
            "schema": EVENT_SCHEMA,
            "id": context.key,
            "type": "dunning.step",
            "instance": context.instance,
            "step": context.step,
            "role": context.role,
            "debtor": debtor,
            "currency": currency,
            "invoices": [
                {
                    "number": line.number,
                    "due_date": line.due_date.isoformat(),
                    "days_overdue": line.days_overdue,
                    "open_amount": amount_text(line.open_amount, currency),
                }
                for line in context.invoices
            ],
            "principal": amount_text(context.principal, currency),
            "interest": optional_amount(context.interest, currency),
            "costs": optional_amount(context.costs, currency),
            "total": amount_text(context.total, currency),
            "deadline": context.deadline.isoformat(),
        }

    def preview(self, payload: Payload) -> str:
        return f"POST {self.settings.url}\n{super().preview(payload)}"

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        body = {**payload, "created_at": utc_timestamp(self.env.clock())}
        posted = await self._http.post_json(self.settings.url, body, idempotency_key)
        code = posted.response.status_code
        if not (posted.response.is_success or code == 409):
            raise self._http.failure(posted.response)
        self.env.logger.info(
            "action %s: webhook %s answered %s", idempotency_key, self.instance, code
        )
        return Receipt(
            details={"http_status": code, "duplicate": code == 409},
            content_sha256=posted.sha256,
        )


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(WebhookAction)
