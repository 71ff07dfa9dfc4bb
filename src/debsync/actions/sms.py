"""SMS (``type = "sms"``): short dunning texts through CM.com, Bird or Twilio.

Rendering is the same for every provider and pure: the step template's ``text`` block, its
whitespace normalised, measured in GSM-7 septets or UCS-2 code units. A text longer than
``max_segments`` fails the render, not the send, so the template is fixed once instead of
failing at every debtor. The recipient is the debtor's first mobile number.

Sending goes through one :class:`Gateway` per provider over one ``httpx.AsyncClient`` per
batch. No provider deduplicates on a key of ours, so the action is not idempotent: every
failure is classified by whether the message can have left (retry later, never, channel down,
in doubt), and the outbox key travels as the provider's ``reference`` where there is one (CM,
Bird), so a delivery report can be matched to its action even without the provider's id.

Delivery reports: :meth:`SmsAction.parse_delivery_report` turns a provider's callback, exactly
as an HTTP endpoint received it, into :class:`DeliveryReport` records after checking the
provider's signature; :meth:`SmsAction.fetch_status` asks the provider (Bird, Twilio) for a
message's current state. Neither ever logs or returns a phone number.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import ssl
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from uuid import UUID

import httpx
import phonenumbers
from pydantic import AfterValidator, AnyHttpUrl, Field, SecretStr, model_validator

from debsync import __version__, hookimpl
from debsync.actions.base import (
    Action,
    ActionEnvironment,
    ActionError,
    ActionSettings,
    ActionUnavailableError,
    DebtorContext,
    InboundError,
    InboundRequest,
    InboundSignatureError,
    MessageContext,
    OutcomeUnknownError,
    Payload,
    PermanentActionError,
    Receipt,
    RenderError,
    RetryableActionError,
    SentAction,
    StatusReport,
)
from debsync.clock import AMSTERDAM
from debsync.hookspecs import RegisterAction
from debsync.model import DEFAULT_PHONE_REGION

USER_AGENT = f"debsync/{__version__}"

# -- encoding and segments (3GPP TS 23.038) ---------------------------------------------------

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM-7 default alphabet, one septet each (the escape code itself left out)."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""The extension table: each character costs an escape plus itself, two septets."""

Encoding = Literal["gsm7", "ucs2"]
SINGLE_PART: Mapping[Encoding, int] = {"gsm7": 160, "ucs2": 70}
"""Capacity of an unsplit message: septets (GSM-7) or UTF-16 code units (UCS-2)."""
PER_PART: Mapping[Encoding, int] = {"gsm7": 153, "ucs2": 67}
"""Capacity of each part of a split message, after the 6-byte concatenation header."""
UNITS: Mapping[Encoding, str] = {"gsm7": "septets", "ucs2": "UTF-16 code units"}


@dataclass(frozen=True)
class SmsLength:
    """How a text travels: its encoding, its size in that encoding's units, its parts."""

    encoding: Encoding
    units: int
    segments: int

    def __str__(self) -> str:
        plural = "" if self.segments == 1 else "s"
        return (
            f"{'GSM-7' if self.encoding == 'gsm7' else 'UCS-2'}, "
            f"{self.units} {UNITS[self.encoding]}, {self.segments} segment{plural}"
        )


def normalise_text(text: str) -> str:
    """Every space separator (U+00A0 and U+202F, which babel puts inside ``€ 605,00``,
    thin and figure spaces) becomes a plain space, line ends become LF, and the ends are
    trimmed. Only spaces change: one of them alone would switch the whole message to UCS-2,
    whereas changing a letter would change what the creditor wrote."""
    text = text.replace("\r\n", "\n")
    return "".join(" " if unicodedata.category(c) == "Zs" else c for c in text).strip()


def is_gsm7(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def measure(text: str) -> SmsLength:
    """Encoding, size and number of parts of ``text`` as a handset receives it.

    Any character outside GSM-7 switches the whole message to UCS-2. Parts are filled in
    order and a character never straddles two parts: an extension character's escape pair
    and a UTF-16 surrogate pair stay together, so the count is never lower than the bill.
    """
    encoding: Encoding = "gsm7" if all(is_gsm7(c) for c in text) else "ucs2"
    if encoding == "gsm7":
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
    else:
        sizes = [len(c.encode("utf-16-le")) // 2 for c in text]
    units = sum(sizes)
    if units <= SINGLE_PART[encoding]:
        return SmsLength(encoding, units, 1)
    segments, used = 1, 0
    for size in sizes:
        if used + size > PER_PART[encoding]:
            segments, used = segments + 1, 0
        used += size
    return SmsLength(encoding, units, segments)


MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def mobile_number(debtor: DebtorContext) -> str | None:
    """The debtor's first number that can receive SMS, in E.164; fixed lines cannot."""
    for value in debtor.phones:
        try:
            number = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
        except phonenumbers.NumberParseException:
            continue
        valid = phonenumbers.is_valid_number(number)
        if valid and phonenumbers.number_type(number) in MOBILE_TYPES:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


# -- settings ---------------------------------------------------------------------------------

Provider = Literal["cm", "bird", "twilio"]

_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ]{0,9}[A-Za-z0-9])?")
_NUMERIC_SENDER = re.compile(r"\+[1-9][0-9]{0,14}")


def sender_id(value: str) -> str:
    """An alphanumeric sender (1-11 letters, digits and spaces, at least one letter; the
    debtor cannot reply) or a numeric one (a phone number in E.164)."""
    if value.startswith("+") or value.isdigit():
        if not _NUMERIC_SENDER.fullmatch(value):
            raise ValueError(
                "a numeric sender is a phone number in E.164 form: + and at most 15 digits, "
                "e.g. +31612345678"
            )
        return value
    if not _ALPHANUMERIC_SENDER.fullmatch(value) or not any(c.isalpha() for c in value):
        raise ValueError(
            "an alphanumeric sender is 1 to 11 letters (A-Z), digits and spaces with at least "
            "one letter, not starting or ending with a space, e.g. 'Voorbeeld'; a phone number "
            "is written in E.164 form, e.g. +31612345678"
        )
    return value


SenderId = Annotated[str, AfterValidator(sender_id)]

_OWN_FIELDS: Mapping[Provider, tuple[str, ...]] = {
    "cm": ("product_token",),
    "bird": ("access_key", "workspace_id", "channel_id", "signing_key"),
    "twilio": ("account_sid", "auth_token", "messaging_service_sid", "status_callback_url"),
}
_REQUIRED_FIELDS: Mapping[Provider, tuple[str, ...]] = {
    "cm": ("product_token", "sender"),
    "bird": ("access_key", "workspace_id", "channel_id"),
    "twilio": ("account_sid", "auth_token"),
}
_CALLBACKS_ELSEWHERE: Mapping[Provider, str] = {
    "cm": "CM sends status reports to the webhook configured for the product token in CM's "
    "Channels app, not to a per-message URL",
    "bird": "Bird sends status reports to a webhook subscription (event sms.outbound), not to "
    "a per-message URL",
}
CM_MAX_PARTS = 8


class SmsSettings(ActionSettings):
    """``[actions.<name>]`` with ``type = "sms"``: one provider and its credentials."""

    provider: Provider = Field(
        description='The SMS provider: "cm" (CM.com Business Messaging), "bird" (Bird '
        'Channels API) or "twilio" (Twilio Programmable Messaging).'
    )
    sender: SenderId | None = Field(
        default=None,
        description="Sender shown to the debtor: up to 11 letters, digits and spaces (at "
        "least one letter; the debtor cannot reply) or a phone number in E.164 (+3197...). "
        "Required for CM; for Twilio a Twilio number or approved sender ID (or use "
        "messaging_service_sid); Bird sends from the sender installed on the channel.",
    )
    max_segments: int = Field(
        default=3,
        ge=1,
        description="Most parts one text may take (160/153 GSM-7 septets or 70/67 UCS-2 code "
        "units each); a longer text fails the render. CM accepts at most 8.",
    )
    base_url: AnyHttpUrl | None = Field(
        default=None,
        description="Other API root, e.g. a regional gateway (https://gw-uk.cmtelecom.com, "
        "https://api.dublin.ie1.twilio.com); default the provider's global endpoint.",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds to wait for each step of an HTTP exchange. No answer after the "
        "message was sent leaves its outcome unknown, so keep this generous.",
    )
    status_callback_url: AnyHttpUrl | None = Field(
        default=None,
        description="Twilio only: the URL Twilio posts delivery status changes to "
        "(StatusCallback); CM and Bird are configured on their side.",
    )
    product_token: SecretStr | None = Field(
        default=None, description="CM: the product token (a UUID) from the CM portal."
    )
    access_key: SecretStr | None = Field(
        default=None, description="Bird: an access key allowed to send on the channel."
    )
    workspace_id: UUID | None = Field(default=None, description="Bird: the workspace id.")
    channel_id: UUID | None = Field(
        default=None, description="Bird: the id of the installed SMS channel to send on."
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description="Bird: the signingKey of the webhook subscription, to verify delivery "
        "reports; without it reports are refused.",
    )
    account_sid: str | None = Field(
        default=None,
        pattern=r"^AC[0-9a-f]{32}$",
        description="Twilio: the account SID (AC followed by 32 hex digits).",
    )
    auth_token: SecretStr | None = Field(
        default=None,
        description="Twilio: the account's auth token; it also verifies X-Twilio-Signature.",
    )
    messaging_service_sid: str | None = Field(
        default=None,
        pattern=r"^MG[0-9a-f]{32}$",
        description="Twilio: send through this Messaging Service (MG...) instead of, or "
        "together with, a sender.",
    )

    @model_validator(mode="after")
    def _fits_provider(self) -> Self:
        """Every field must belong to the chosen provider and its required ones be present:
        a CM token left in a Twilio table is a mistake to report, not to ignore."""
        provider = self.provider
        problems = [
            f"provider {provider!r} needs {name}"
            for name in _REQUIRED_FIELDS[provider]
            if getattr(self, name) is None
        ]
        for other, names in _OWN_FIELDS.items():
            if other == provider:
                continue
            for name in names:
                if getattr(self, name) is None:
                    continue
                if name == "status_callback_url" and provider in _CALLBACKS_ELSEWHERE:
                    problems.append(f"{_CALLBACKS_ELSEWHERE[provider]}: remove {name}")
                else:
                    problems.append(f"{name} belongs to provider {other!r}, not {provider!r}")
        if provider == "bird" and self.sender is not None:
            problems.append(
                "Bird sends from the number or sender ID installed on channel_id: choose the "
                "sender in Bird and remove sender"
            )
        if provider == "twilio" and self.sender is None and self.messaging_service_sid is None:
            problems.append("provider 'twilio' needs sender (From) or messaging_service_sid")
        if provider == "cm" and self.max_segments > CM_MAX_PARTS:
            problems.append(f"CM sends at most {CM_MAX_PARTS} parts: lower max_segments")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# -- delivery reports -------------------------------------------------------------------------

DeliveryStatus = Literal["accepted", "delivered", "failed", "expired", "rejected", "unknown"]


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's word on one message, normalised, without phone numbers.

    :param provider_message_id: the provider's id (the receipt's ``provider_id``); CM has none
        and reports by ``reference`` (the outbox key) only.
    :param status: ``accepted`` (on its way), ``delivered`` (the handset has it), ``failed``,
        ``expired``, ``rejected`` (refused by provider or operator) or ``unknown``.
    :param at: when the provider saw this status (UTC); the time of receipt when it does not
        say.
    :param provider_status: the provider's own status value, kept for the dossier.
    """

    provider: Provider
    provider_message_id: str | None
    reference: str | None
    status: DeliveryStatus
    at: datetime
    error_code: str | None = None
    provider_status: str | None = None

    @property
    def event_id(self) -> str:
        """Reports arrive at least once: record each (provider, message, status) once."""
        return f"{self.provider}:{self.provider_message_id or self.reference}:{self.status}"


class DeliveryReportError(InboundError):
    """The request is not a report debsync can use (malformed, misaddressed): answer 400 and
    record nothing."""


class SignatureError(DeliveryReportError, InboundSignatureError):
    """The request is not provably from the provider (no, wrong or stale signature): answer
    401 and record nothing."""


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _moment(value: Any, *, naive: tzinfo = UTC) -> datetime | None:
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


def _text(value: Any) -> str | None:
    """A provider's code or id as text, whether it came as a number or a string; an absent
    or empty one is ``None``."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    return str(value)


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``X-Twilio-Signature``: base64(HMAC-SHA1(auth token, URL + every POST parameter's name
    and value, sorted)), as Twilio's own validators compute it."""
    data = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def bird_signature(signing_key: str, timestamp: str, url: str, body: bytes) -> str:
    """``messagebird-signature``: base64(HMAC-SHA256(signing key, timestamp + LF + URL + LF +
    the raw SHA-256 digest of the body))."""
    message = f"{timestamp}\n{url}\n".encode() + hashlib.sha256(body).digest()
    return base64.b64encode(
        hmac.new(signing_key.encode(), message, hashlib.sha256).digest()
    ).decode()


def _url_variants(url: str) -> list[str]:
    """The URL with and without its scheme's default port: proxies in front of the endpoint
    add or drop it, and Twilio's validators accept either form."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    variants = [url]
    if parts.port is None and default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}")))
    return variants


# -- HTTP outcomes shared by every provider ---------------------------------------------------


def _retry_after(headers: httpx.Headers, now: datetime) -> float | None:
    """``Retry-After`` in seconds, given as seconds or as an HTTP date."""
    value = (headers.get("retry-after") or "").strip()
    if value.isdigit():
        return float(value)
    when = _moment(value)
    return None if when is None else max(0.0, (when - now).total_seconds())


async def _exchange(
    client: httpx.AsyncClient, request: httpx.Request, label: str, *, safe: bool
) -> httpx.Response:
    """Send one request; a transport failure becomes the error that says whether the message
    can have reached the provider. ``safe`` requests (lookups) change nothing when repeated."""
    try:
        return await client.send(request)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError) as exc:
        raise RetryableActionError(
            f"cannot reach {label} ({type(exc).__name__}): nothing was sent"
        ) from None
    except (httpx.WriteError, httpx.WriteTimeout) as exc:
        raise RetryableActionError(
            f"the request to {label} broke off while it was being written "
            f"({type(exc).__name__}): {label} cannot have received a complete message"
        ) from None
    except httpx.UnsupportedProtocol:
        raise ActionUnavailableError(f"{label}: base_url is not an http(s) URL") from None
    except httpx.TransportError as exc:
        if safe:
            raise RetryableActionError(f"no answer from {label} ({type(exc).__name__})") from None
        raise OutcomeUnknownError(
            f"no answer from {label} after the message was sent ({type(exc).__name__}): it may "
            "have been accepted"
        ) from None


def _status_error(
    response: httpx.Response, label: str, now: datetime, *, safe: bool
) -> ActionError | None:
    """The outcome an HTTP status alone decides.

    A 500 on a send is an unknown outcome: it comes from the provider's application, which may
    have queued the message before failing. 502, 503 and 504 come from the gateways in front
    of it and are retried, as are 408 and 429 (after ``Retry-After``).
    """
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
            f"{said}: try again later", retry_after=_retry_after(response.headers, now)
        )
    if code >= 500:
        return OutcomeUnknownError(
            f"{said}, an internal error: it may have accepted the message before failing"
        )
    return None


def _unexpected(response: httpx.Response, label: str) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"{label} answered HTTP {response.status_code} with a body debsync does not understand: "
        "the message may have been accepted"
    )


# -- gateways ---------------------------------------------------------------------------------


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle takes longer than a batch of sends."""
    return httpx.create_ssl_context()


class Gateway(ABC):
    """One provider's HTTP API: how a message is submitted and how its answers, lookups and
    delivery reports read. The action owns the client and the shared HTTP error mapping."""

    name: ClassVar[Provider]
    label: ClassVar[str]
    default_base_url: ClassVar[str]
    can_fetch_status: ClassVar[bool] = False

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings

    def client(self) -> httpx.AsyncClient:
        base = str(self.settings.base_url) if self.settings.base_url else self.default_base_url
        return httpx.AsyncClient(
            base_url=base.rstrip("/"),
            timeout=self.settings.timeout,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **self.headers()},
            auth=self.auth(),
            verify=_tls_context(),
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


# CM.com: https://github.com/cmdotcom/text-sdk-dotnet (TextClientStatusCode, Message, Response)
_CM_UNAVAILABLE = {
    101: "authentication failed",
    102: "insufficient balance",
    103: "product token incorrect",
    301: "sender (from) invalid",
}
_CM_UNKNOWN = {500: "internal server error", 999: "unknown error"}
_CM_REFUSED = {
    201: "not all messages sent",
    202: "request malformed",
    203: "message array incorrect",
    302: "recipient (to) invalid",
    303: "recipient number invalid",
    304: "body invalid",
    305: "field invalid",
    401: "spam filtered",
    402: "recipient blacklisted",
    403: "rejected",
}
_CM_REPORT_STATUS: Mapping[str, DeliveryStatus] = {
    "0": "accepted",
    "1": "rejected",
    "2": "delivered",
    "3": "failed",
}
_CM_REFERENCE = re.compile(r"[A-Za-z0-9]{1,32}")


def cm_reference(key: str) -> str:
    """CM's ``reference`` is 1-32 letters and digits: the outbox key (32 hex digits) as is,
    any other key as the first 32 hex digits of its SHA-256."""
    return key if _CM_REFERENCE.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()[:32]


def _code(value: Any) -> int | None:
    """CM's codes arrive as numbers or as digit strings, depending on the endpoint version."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class CmGateway(Gateway):
    """CM.com Business Messaging, JSON gateway. The answer carries no message id: CM's
    reports and portal identify a message by our ``reference``, so that is the provider id."""

    name: ClassVar[Provider] = "cm"
    label: ClassVar[str] = "CM.com"
    default_base_url: ClassVar[str] = "https://gw.cmtelecom.com"

    def submission(self, client: httpx.AsyncClient, payload: Payload, key: str) -> httpx.Request:
        token = self.settings.product_token
        assert token is not None and self.settings.sender is not None  # settings validated
        sender = self.settings.sender
        message = {
            "allowedChannels": ["SMS"],
            "from": f"00{sender[1:]}" if sender.startswith("+") else sender,
            "to": [{"number": "00" + payload["to"][1:]}],
            "body": {"type": "auto", "content": payload["text"]},
            "reference": cm_reference(key),
            "minimumNumberOfMessageParts": 1,
            "maximumNumberOfMessageParts": self.settings.max_segments,
            "customGrouping3": "debsync",
        }
        body = {
            "messages": {
                "authentication": {"producttoken": token.get_secret_value()},
                "msg": [message],
            }
        }
        return client.build_request("POST", "/v1.0/message", json=body)

    def refusal(self, response: httpx.Response) -> ActionError | None:
        """The top-level ``errorCode`` decides, then the message's own ``messageErrorCode``."""
        body = _json_object(response.content)
        if body is None:
            return None
        code = _code(body.get("errorCode"))
        if code == 201:  # some messages refused: ours is the only one, its own code says why
            messages = body.get("messages")
            first = messages[0] if isinstance(messages, list) and messages else None
            message_code = _code(first.get("messageErrorCode")) if isinstance(first, dict) else None
            code = message_code or code
        if code is None or code == 0:
            return None
        said = f"CM.com refused the message: errorCode {code}"
        if code in _CM_UNAVAILABLE:
            return ActionUnavailableError(f"{said} ({_CM_UNAVAILABLE[code]})")
        if code in _CM_UNKNOWN:
            return OutcomeUnknownError(f"{said} ({_CM_UNKNOWN[code]}): it may have been sent")
        return PermanentActionError(f"{said} ({_CM_REFUSED.get(code, 'see CM error codes')})")

    def receipt(self, response: httpx.Response, payload: Payload, key: str) -> Receipt:
        body = _json_object(response.content)
        messages = body.get("messages") if body else None
        first = messages[0] if isinstance(messages, list) and len(messages) == 1 else None
        reference = cm_reference(key)
        if not isinstance(first, dict) or first.get("reference") != reference:
            raise _unexpected(response, self.label)
        status = first.get("status")
        if status != "Accepted":
            code = _code(first.get("messageErrorCode"))
            if status == "Rejected":
                reason = _CM_REFUSED.get(code or 0, "see CM error codes")
                raise PermanentActionError(
                    f"CM.com rejected the message: messageErrorCode {code} ({reason})"
                )
            raise _unexpected(response, self.label)
        parts = _code(first.get("parts"))
        return Receipt(
            provider_id=reference,
            details={
                "provider": self.name,
                "status": status,
                "segments": parts or payload["segments"],
                "encoding": payload["encoding"],
                "reference": reference,
            },
        )

    def reports(self, request: InboundRequest, now: datetime) -> list[DeliveryReport]:
        """CM's JSON status report (``{"messages": {"msg": {...}}}``). CM does not sign it;
        an unguessable path and CM's source addresses protect the endpoint. Times without an
        offset are CM's local time (Europe/Amsterdam)."""
        body = _json_object(request.body)
        container = body.get("messages") if body else None
        found = container.get("msg") if isinstance(container, dict) else None
        items = found if isinstance(found, list) else [found]
        reports = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("status"), dict):
                raise DeliveryReportError("not a CM.com JSON status report")
            status, reference = item["status"], _text(item.get("reference"))
            if reference is None:
                raise DeliveryReportError("CM.com status report without reference")
            code = _text(status.get("code"))
            reports.append(
                DeliveryReport(
                    provider=self.name,
                    provider_message_id=None,
                    reference=reference,
                    status=_CM_REPORT_STATUS.get(code or "", "unknown"),
                    at=_moment(item.get("received"), naive=AMSTERDAM) or now,
                    error_code=_text(status.get("errorCode")),
                    provider_status=code,
                )
            )
        return reports


_BIRD_STATUS: Mapping[str, DeliveryStatus] = {
    "accepted": "accepted",
    "processing": "accepted",
    "scheduled": "accepted",
    "sent": "accepted",
    "delivered": "delivered",
    "sending_failed": "failed",
    "delivery_failed": "failed",
    "failed": "failed",
    "expired": "expired",
    "rejected": "rejected",
    "skipped": "rejected",
}
_BIRD_REFUSED = frozenset({"rejected", "sending_failed", "skipped"})
BIRD_REPORT_MAX_AGE = timedelta(hours=12)
"""Bird retries a webhook for 8 hours with the original timestamp; older ones are refused."""
BIRD_REPORT_MAX_SKEW = timedelta(minutes=5)
"""How far a timestamp may lie in the future (clock skew)."""


def _bird_failure(message: Mapping[str, Any]) -> str | None:
    failure = message.get("failure")
    if isinstance(failure, dict):
        return _text(failure.get("code"))
    return _text(message.get("reason"))


class BirdGateway(Gateway):
    """Bird Channels API: one installed SMS channel in one workspace."""

    name: ClassVar[Provider] = "bird"
    label: ClassVar[str] = "Bird"
    default_base_url: ClassVar[str] = "https://api.bird.com"
    can_fetch_status: ClassVar[bool] = True

    @property
    def messages_path(self) -> str:
        return (
            f"/workspaces/{self.settings.workspace_id}/channels/{self.settings.channel_id}/messages"
        )

    def headers(self) -> dict[str, str]:
        assert self.settings.access_key is not None  # settings validated
        return {"Authorization": f"AccessKey {self.settings.access_key.get_secret_value()}"}

    def submission(self, client: httpx.AsyncClient, payload: Payload, key: str) -> httpx.Request:
        body = {
            "receiver": {
                "contacts": [{"identifierKey": "phonenumber", "identifierValue": payload["to"]}]
            },
            "body": {"type": "text", "text": {"text": payload["text"]}},
            "reference": key,
        }
        return client.build_request("POST", self.messages_path, json=body)

    def refusal(self, response: httpx.Response) -> ActionError | None:
        if response.is_success:
            return None
        body = _json_object(response.content) or {}
        code = _text(body.get("code"))
        return PermanentActionError(
            f"Bird refused the message: HTTP {response.status_code}"
            + (f", code {code}" if code else "")
        )

    def receipt(self, response: httpx.Response, payload: Payload, key: str) -> Receipt:
        body = _json_object(response.content)
        message_id = _text(body.get("id")) if body else None
        status = _text(body.get("status")) if body else None
        if body is None or message_id is None or status is None:
            raise _unexpected(response, self.label)
        if status in _BIRD_REFUSED:
            failure = _bird_failure(body)
            raise PermanentActionError(
                f"Bird reports message {message_id} as {status}"
                + (f" (failure {failure})" if failure else "")
            )
        return Receipt(
            provider_id=message_id,
            details={
                "provider": self.name,
                "status": status,
                "segments": payload["segments"],
                "encoding": payload["encoding"],
                "reference": key,
            },
        )

    def status_request(self, client: httpx.AsyncClient, provider_id: str) -> httpx.Request:
        return client.build_request("GET", f"{self.messages_path}/{UUID(provider_id)}")

    def status_report(self, response: httpx.Response, now: datetime) -> DeliveryReport | None:
        body = _json_object(response.content)
        return self._report(body, now) if body else None

    def _report(self, message: Mapping[str, Any], now: datetime) -> DeliveryReport | None:
        message_id, status = _text(message.get("id")), _text(message.get("status"))
        if message_id is None or status is None:
            return None
        return DeliveryReport(
            provider=self.name,
            provider_message_id=message_id,
            reference=_text(message.get("reference")),
            status=_BIRD_STATUS.get(status, "unknown"),
            at=_moment(message.get("lastStatusAt")) or _moment(message.get("updatedAt")) or now,
            error_code=_bird_failure(message),
            provider_status=status,
        )

    def reports(self, request: InboundRequest, now: datetime) -> list[DeliveryReport]:
        """A webhook event, after its signature (``messagebird-signature`` over
        ``messagebird-request-timestamp``, URL and body) and age are checked. Only
        ``sms.outbound`` events of this channel are delivery reports."""
        self._verify(request, now)
        body = _json_object(request.body)
        message = body.get("payload") if body else None
        if body is None or not isinstance(message, dict):
            raise DeliveryReportError("not a Bird webhook event")
        if body.get("event") != "sms.outbound" or message.get("channelId") != str(
            self.settings.channel_id
        ):
            return []
        report = self._report(message, now)
        if report is None:
            raise DeliveryReportError("Bird event without message id or status")
        return [report]

    def _verify(self, request: InboundRequest, now: datetime) -> None:
        key = self.settings.signing_key
        if key is None:
            raise SignatureError("no signing_key configured: Bird reports cannot be verified")
        signature = request.header("messagebird-signature")
        timestamp = request.header("messagebird-request-timestamp")
        if not signature or not timestamp or not timestamp.strip().isdigit():
            raise SignatureError("Bird report without signature or timestamp")
        expected = bird_signature(key.get_secret_value(), timestamp, request.url, request.body)
        if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
            raise SignatureError("Bird report with a wrong signature")
        try:
            age = now - datetime.fromtimestamp(int(timestamp), UTC)
        except (OverflowError, OSError, ValueError):
            raise SignatureError("Bird report with an impossible timestamp") from None
        if age > BIRD_REPORT_MAX_AGE or age < -BIRD_REPORT_MAX_SKEW:
            raise SignatureError(f"Bird report timestamped {age} ago: refused as a replay")


_TWILIO_STATUS: Mapping[str, DeliveryStatus] = {
    "accepted": "accepted",
    "scheduled": "accepted",
    "queued": "accepted",
    "sending": "accepted",
    "sent": "accepted",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
# https://www.twilio.com/docs/api/errors: codes that concern the account or sender, so every
# message would fail the same way, and codes that concern only this recipient.
_TWILIO_UNAVAILABLE = {
    20003: "authentication failed",
    20005: "account not active",
    21212: "invalid From number",
    21606: "From is not a message-capable number of this account",
}
_TWILIO_RETRYABLE = {21611: "the sender's queue is full"}
_TWILIO_RECIPIENT = {
    21211: "invalid To number",
    21408: "sending to this region is not enabled",
    21610: "the recipient has unsubscribed (STOP)",
    21612: "the To number cannot receive SMS from this sender",
    21614: "To is not a mobile number",
}


class TwilioGateway(Gateway):
    """Twilio Programmable Messaging. Twilio keeps no reference of ours: the outbox row ties
    its key to the message SID."""

    name: ClassVar[Provider] = "twilio"
    label: ClassVar[str] = "Twilio"
    default_base_url: ClassVar[str] = "https://api.twilio.com"
    can_fetch_status: ClassVar[bool] = True

    @property
    def messages_path(self) -> str:
        return f"/2010-04-01/Accounts/{self.settings.account_sid}/Messages"

    def auth(self) -> httpx.Auth:
        token = self.settings.auth_token
        assert self.settings.account_sid is not None and token is not None  # settings validated
        return httpx.BasicAuth(self.settings.account_sid, token.get_secret_value())

    def submission(self, client: httpx.AsyncClient, payload: Payload, key: str) -> httpx.Request:
        settings = self.settings
        form = {"To": payload["to"], "Body": payload["text"]}
        if settings.sender is not None:
            form["From"] = settings.sender
        if settings.messaging_service_sid is not None:
            form["MessagingServiceSid"] = settings.messaging_service_sid
        if settings.status_callback_url is not None:
            form["StatusCallback"] = str(settings.status_callback_url)
        return client.build_request("POST", f"{self.messages_path}.json", data=form)

    def refusal(self, response: httpx.Response) -> ActionError | None:
        if response.is_success:
            return None
        body = _json_object(response.content) or {}
        code = _code(body.get("code"))
        said = f"Twilio refused the message: HTTP {response.status_code}" + (
            f", code {code}" if code is not None else ""
        )
        if code in _TWILIO_UNAVAILABLE:
            return ActionUnavailableError(f"{said} ({_TWILIO_UNAVAILABLE[code]})")
        if code in _TWILIO_RETRYABLE:
            return RetryableActionError(f"{said} ({_TWILIO_RETRYABLE[code]})")
        return PermanentActionError(
            f"{said} ({_TWILIO_RECIPIENT.get(code or 0, 'see Twilio errors')})"
        )

    def receipt(self, response: httpx.Response, payload: Payload, key: str) -> Receipt:
        body = _json_object(response.content)
        sid = _text(body.get("sid")) if body else None
        status = _text(body.get("status")) if body else None
        if body is None or sid is None or status is None:
            raise _unexpected(response, self.label)
        if status == "failed":
            raise PermanentActionError(
                f"Twilio failed message {sid} at once: error {_text(body.get('error_code'))}"
            )
        return Receipt(
            provider_id=sid,
            details={
                "provider": self.name,
                "status": status,
                "segments": _code(body.get("num_segments")) or payload["segments"],
                "encoding": payload["encoding"],
            },
        )

    def status_request(self, client: httpx.AsyncClient, provider_id: str) -> httpx.Request:
        if not re.fullmatch(r"[SM]M[0-9a-f]{32}", provider_id):
            raise ValueError("not a Twilio message SID")
        return client.build_request("GET", f"{self.messages_path}/{provider_id}.json")

    def status_report(self, response: httpx.Response, now: datetime) -> DeliveryReport | None:
        body = _json_object(response.content)
        sid = _text(body.get("sid")) if body else None
        status = _text(body.get("status")) if body else None
        if body is None or sid is None or status is None:
            return None
        return DeliveryReport(
            provider=self.name,
            provider_message_id=sid,
            reference=None,
            status=_TWILIO_STATUS.get(status, "unknown"),
            at=_moment(body.get("date_updated")) or now,
            error_code=_text(body.get("error_code")),
            provider_status=status,
        )

    def reports(self, request: InboundRequest, now: datetime) -> list[DeliveryReport]:
        """A StatusCallback (form POST) after its ``X-Twilio-Signature`` is checked with the
        auth token. Twilio sends no timestamp: the report is dated when it arrives."""
        token = self.settings.auth_token
        assert token is not None  # settings validated
        if request.method.upper() == "POST":
            params = parse_qsl(request.body.decode(errors="replace"), keep_blank_values=True)
        else:
            params = []
        signature = (request.header("x-twilio-signature") or "").strip()
        if not signature or not any(
            hmac.compare_digest(
                twilio_signature(token.get_secret_value(), url, params).encode(),
                signature.encode(),
            )
            for url in _url_variants(request.url)
        ):
            raise SignatureError("Twilio callback without a valid X-Twilio-Signature")
        values = dict(params) if params else dict(parse_qsl(urlsplit(request.url).query))
        if values.get("AccountSid") != self.settings.account_sid:
            raise DeliveryReportError("Twilio callback for another account")
        sid = values.get("MessageSid") or values.get("SmsSid")
        status = values.get("MessageStatus") or values.get("SmsStatus")
        if not sid or not status:
            raise DeliveryReportError("Twilio callback without MessageSid or MessageStatus")
        return [
            DeliveryReport(
                provider=self.name,
                provider_message_id=sid,
                reference=None,
                status=_TWILIO_STATUS.get(status, "unknown"),
                at=now,
                error_code=_text(values.get("ErrorCode")),
                provider_status=status,
            )
        ]


GATEWAYS: Mapping[Provider, type[Gateway]] = {
    "cm": CmGateway,
    "bird": BirdGateway,
    "twilio": TwilioGateway,
}


# -- the action -------------------------------------------------------------------------------


class SmsAction(Action[SmsSettings]):
    """Texts the debtor's mobile number through the configured provider. One HTTP client
    serves a batch; a lone send is a batch of one."""

    type_name: ClassVar[str] = "sms"
    Settings: ClassVar[type[ActionSettings]] = SmsSettings
    channel: ClassVar[str] = "sms"
    idempotent: ClassVar[bool] = False
    uses_templates: ClassVar[bool] = True

    def __init__(self, instance: str, settings: SmsSettings, env: ActionEnvironment) -> None:
        super().__init__(instance, settings, env)
        self.gateway = GATEWAYS[settings.provider](settings)
        self._client: httpx.AsyncClient | None = None

    def render(self, context: MessageContext) -> Payload:
        to = mobile_number(context.debtor)
        if to is None:
            raise RenderError(
                f"debtor {context.debtor.external_id} has no mobile phone number "
                "(fixed lines cannot receive SMS)"
            )
        text = normalise_text(self.env.templates.blocks("sms", context, ["text"])["text"])
        template = self.env.templates.path("sms", context.template, context.language)
        if not text:
            raise RenderError(f"template {template} rendered an empty text")
        length = measure(text)
        if length.segments > self.settings.max_segments:
            culprit = next((c for c in text if not is_gsm7(c)), None)
            why = f" (U+{ord(culprit):04X} is not GSM-7)" if culprit else ""
            raise RenderError(
                f"the text of {template} is {length}{why}; max_segments is "
                f"{self.settings.max_segments}"
            )
        return {
            "to": to,
            "text": text,
            "encoding": length.encoding,
            "segments": length.segments,
            "sender": self.settings.sender,
        }

    def preview(self, payload: Payload) -> str:
        sender = payload["sender"] or f"the sender configured at {self.gateway.label}"
        plural = "" if payload["segments"] == 1 else "s"
        encoding = "GSM-7" if payload["encoding"] == "gsm7" else "UCS-2"
        return (
            f"SMS to {payload['to']} from {sender} via {self.gateway.label} "
            f"({encoding}, {payload['segments']} segment{plural})\n\n{payload['text']}\n"
        )

    async def __aenter__(self) -> Self:
        self._client = self.gateway.client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        if self._client is None:  # a lone send is a batch of one
            async with self:
                return await self.send(payload, idempotency_key)
        try:
            receipt = await self._submit(self._client, payload, idempotency_key)
        except ActionError as exc:
            self.env.logger.warning("action %s: %s", idempotency_key, exc)
            raise
        self.env.logger.info(
            "action %s: %s accepted message %s (%s, %s segment(s))",
            idempotency_key,
            self.gateway.label,
            receipt.provider_id,
            receipt.details["status"],
            receipt.details["segments"],
        )
        return receipt

    async def _submit(self, client: httpx.AsyncClient, payload: Payload, key: str) -> Receipt:
        gateway = self.gateway
        request = gateway.submission(client, payload, key)
        response = await _exchange(client, request, gateway.label, safe=False)
        error = _status_error(response, gateway.label, self.env.clock(), safe=False)
        error = error or gateway.refusal(response)
        if error is None and not response.is_success:
            error = PermanentActionError(
                f"{gateway.label} refused the message: HTTP {response.status_code}"
            )
        if error is not None:
            raise error
        return gateway.receipt(response, payload, key)

    @property
    def can_fetch_status(self) -> bool:
        """Whether the provider can be asked for a message's status (Bird, Twilio; not CM)."""
        return self.gateway.can_fetch_status

    async def fetch_status(self, provider_id: str) -> DeliveryReport:
        """The provider's current status of a sent message (``Receipt.provider_id``): how the
        core recovers a report it missed, or checks an in-doubt send.

        :raises NotImplementedError: the provider has no lookup API (CM).
        :raises ActionError: as :meth:`send` would, except that a lookup is safe to repeat, so
            timeouts and 5xx answers are retryable; a 404 is a :class:`PermanentActionError`.
        """
        if self._client is None:
            async with self:
                return await self.fetch_status(provider_id)
        gateway = self.gateway
        request = gateway.status_request(self._client, provider_id)
        response = await _exchange(self._client, request, gateway.label, safe=True)
        now = self.env.clock()
        error = _status_error(response, gateway.label, now, safe=True)
        if error is None and not response.is_success:
            error = PermanentActionError(
                f"{gateway.label} refused the lookup: HTTP {response.status_code}"
            )
        if error is not None:
            raise error
        report = gateway.status_report(response, now)
        if report is None:
            raise PermanentActionError(
                f"{gateway.label} answered the lookup with HTTP {response.status_code} and a "
                "body debsync does not understand"
            )
        return report

    poll_window_days: ClassVar[int] = 2  # a text is delivered, or not, within hours

    def receive(self, request: InboundRequest) -> list[StatusReport]:
        """The provider's delivery-report callback as status reports for the dossier."""
        return [_status_report(r) for r in self.parse_delivery_report(request)]

    async def poll(self, sent: Sequence[SentAction]) -> list[StatusReport]:
        """Look up texts still without a final report, where the provider has a lookup."""
        if not self.can_fetch_status:
            return []
        return [
            _status_report(await self.fetch_status(s.provider_id))
            for s in sent
            if s.provider_id is not None
        ]

    def parse_delivery_report(self, request: InboundRequest) -> list[DeliveryReport]:
        """The delivery reports in a provider callback, as the HTTP endpoint received it.

        :raises SignatureError: the provider signs its callbacks (Bird, Twilio) and this one's
            signature is missing, wrong or too old; answer 401.
        :raises DeliveryReportError: it is not a report of this provider; answer 400.
        """
        return self.gateway.reports(request, self.env.clock())


FINAL_STATUSES = frozenset({"delivered", "failed", "expired", "rejected"})


def _status_report(report: DeliveryReport) -> StatusReport:
    return StatusReport(
        event_id=report.event_id,
        status=report.status,
        at=report.at,
        provider_id=report.provider_message_id,
        key=report.reference,
        final=report.status in FINAL_STATUSES,
        details={
            "provider": report.provider,
            "provider_status": report.provider_status,
            "error_code": report.error_code,
        },
    )


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(SmsAction)
