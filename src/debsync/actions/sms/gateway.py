"""What every SMS provider's API shares: the :class:`Gateway` contract, reading a provider's
answers, and the outcome an HTTP status decides before a provider's own error codes.

The transport (one client per batch, timeouts, connection failures) is
:mod:`debsync.actions.http`'s; a gateway only builds requests and reads answers.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from debsync.actions.base import (
    ActionError,
    ActionUnavailableError,
    InboundRequest,
    OutcomeUnknownError,
    Payload,
    PermanentActionError,
    Receipt,
    RetryableActionError,
)
from debsync.actions.http import SAFE_METHODS, http_client
from debsync.actions.sms.reports import DeliveryReport
from debsync.actions.sms.settings import Provider, SmsSettings
from debsync.http import retry_after

# -- reading providers' answers --------------------------------------------------------------


def json_object(content: bytes) -> dict[str, Any] | None:
    """A body as a JSON object; ``None`` for anything else (an HTML error page, a list)."""
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def as_moment(value: Any, *, naive: tzinfo = UTC) -> datetime | None:
    """An ISO 8601 or RFC 2822 timestamp as UTC; a naive one is read in ``naive``."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive)
    return moment.astimezone(UTC)


def as_text(value: Any) -> str | None:
    """A provider's code or id as text, whether it came as a number or a string; an absent
    or empty one is ``None``."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    return str(value)


def as_code(value: Any) -> int | None:
    """A provider's numeric code, which arrives as a number or as a digit string depending on
    the provider and the endpoint version."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# -- the HTTP status -------------------------------------------------------------------------


def status_error(response: httpx.Response, label: str, now: datetime) -> ActionError | None:
    """The outcome an HTTP status alone decides.

    A 500 on a send is an unknown outcome: it comes from the provider's application, which may
    have queued the message before failing. 502, 503 and 504 come from the gateways in front
    of it and are retried, as are 408 and 429 (after ``Retry-After``). A lookup (a safe
    method) changes nothing, so any 5xx is retried and a 404 means the message is unknown.
    """
    safe = response.request.method in SAFE_METHODS
    code = response.status_code
    said = f"{label} answered HTTP {code}"
    if 300 <= code < 400:
        return ActionUnavailableError(f"{said}, a redirect: check base_url")
    if code in (401, 403):
        return ActionUnavailableError(f"{said}: the credentials were refused")
    if code == 404:
        if safe:
            return PermanentActionError(f"{said}: it does not know this message")
        return ActionUnavailableError(
            f"{said}: no such endpoint; check base_url and the account, workspace or channel id"
        )
    if code in (408, 429, 502, 503, 504) or (safe and code >= 500):
        return RetryableActionError(
            f"{said}: try again later",
            retry_after=retry_after(response.headers.get("retry-after"), now),
        )
    if code >= 500:
        return OutcomeUnknownError(
            f"{said}, an internal error: it may have accepted the message before failing"
        )
    return None


def unexpected(response: httpx.Response, label: str) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"{label} answered HTTP {response.status_code} with a body debsync does not understand: "
        "the message may have been accepted"
    )


# -- the contract ---------------------------------------------------------------------------


class Gateway(ABC):
    """One provider's HTTP API: how a message is submitted and how its answers, lookups and
    delivery reports read. The action owns the channel and the mapping of HTTP statuses."""

    name: ClassVar[Provider]
    label: ClassVar[str]
    default_base_url: ClassVar[str]
    can_fetch_status: ClassVar[bool] = False

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings

    def client(self) -> httpx.AsyncClient:
        base = str(self.settings.base_url) if self.settings.base_url else self.default_base_url
        return http_client(
            self.settings.timeout,
            {"Accept": "application/json", **self.headers()},
            base_url=base.rstrip("/"),
            auth=self.auth(),
        )

    def headers(self) -> dict[str, str]:
        return {}

    def auth(self) -> httpx.Auth | None:
        return None

    @abstractmethod
    def submission(self, client: httpx.AsyncClient, payload: Payload, key: str) -> httpx.Request:
        """The request that submits ``payload``, carrying ``key`` where the provider keeps a
        reference."""

    def refusal(self, response: httpx.Response) -> ActionError | None:
        """What the provider's own error codes say about an answer the status did not decide."""
        return None

    @abstractmethod
    def receipt(self, response: httpx.Response, payload: Payload, key: str) -> Receipt:
        """Read an accepting answer; a body that does not prove acceptance leaves the outcome
        unknown."""

    def status_request(self, client: httpx.AsyncClient, provider_id: str) -> httpx.Request:
        raise NotImplementedError(f"{self.label} has no API to look up a message's status")

    def status_report(self, response: httpx.Response, now: datetime) -> DeliveryReport | None:
        """Read a lookup's answer; ``None`` when it is not a message."""
        raise NotImplementedError(f"{self.label} has no API to look up a message's status")

    @abstractmethod
    def reports(self, request: InboundRequest, now: datetime) -> list[DeliveryReport]:
        """The delivery reports in a callback; ``[]`` for a genuine callback about something
        else (an inbound message, another channel), so the endpoint can acknowledge it."""
