"""Twilio Programmable Messaging: submission, error codes, lookups and StatusCallbacks signed
with the auth token (``X-Twilio-Signature``)."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

import httpx

from debsync.actions.base import (
    ActionError,
    ActionUnavailableError,
    InboundRequest,
    Payload,
    PermanentActionError,
    Receipt,
    RetryableActionError,
)
from debsync.actions.sms.gateway import (
    Gateway,
    as_code,
    as_moment,
    as_text,
    json_object,
    unexpected,
)
from debsync.actions.sms.reports import (
    DeliveryReport,
    DeliveryReportError,
    DeliveryStatus,
    SignatureError,
    twilio_signature,
    url_variants,
)
from debsync.actions.sms.settings import Provider

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
        body = json_object(response.content) or {}
        code = as_code(body.get("code"))
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
        body = json_object(response.content)
        sid = as_text(body.get("sid")) if body else None
        status = as_text(body.get("status")) if body else None
        if body is None or sid is None or status is None:
            raise unexpected(response, self.label)
        if status == "failed":
            raise PermanentActionError(
                f"Twilio failed message {sid} at once: error {as_text(body.get('error_code'))}"
            )
        return Receipt(
            provider_id=sid,
            details={
                "provider": self.name,
                "status": status,
                "segments": as_code(body.get("num_segments")) or payload["segments"],
                "encoding": payload["encoding"],
            },
        )

    def status_request(self, client: httpx.AsyncClient, provider_id: str) -> httpx.Request:
        if not re.fullmatch(r"[SM]M[0-9a-f]{32}", provider_id):
            raise ValueError("not a Twilio message SID")
        return client.build_request("GET", f"{self.messages_path}/{provider_id}.json")

    def status_report(self, response: httpx.Response, now: datetime) -> DeliveryReport | None:
        body = json_object(response.content)
        sid = as_text(body.get("sid")) if body else None
        status = as_text(body.get("status")) if body else None
        if body is None or sid is None or status is None:
            return None
        return DeliveryReport(
            provider=self.name,
            provider_message_id=sid,
            reference=None,
            status=_TWILIO_STATUS.get(status, "unknown"),
            at=as_moment(body.get("date_updated")) or now,
            error_code=as_text(body.get("error_code")),
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
            for url in url_variants(request.url)
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
                error_code=as_text(values.get("ErrorCode")),
                provider_status=status,
            )
        ]
