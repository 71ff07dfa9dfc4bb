"""Delivery reports: a provider's later word on a text, normalised, and the signatures that
prove a callback came from the provider.

Each gateway reads its own provider's callbacks and lookups into :class:`DeliveryReport`; a
report never holds a phone number, so it can go to the log and the dossier as it is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from debsync.actions.base import InboundError, InboundSignatureError, StatusReport
from debsync.actions.sms.settings import Provider

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


def url_variants(url: str) -> list[str]:
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


FINAL_STATUSES = frozenset({"delivered", "failed", "expired", "rejected"})


def as_status_report(report: DeliveryReport) -> StatusReport:
    """A delivery report as the core records it in the dossier."""
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
