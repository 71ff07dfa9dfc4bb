"""Bird Channels API: one installed SMS channel in one workspace; lookups, and webhook
events signed with the subscription's signing key."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

import httpx

from debsync.actions.base import ActionError, InboundRequest, Payload, PermanentActionError, Receipt
from debsync.actions.sms.gateway import (
    Gateway,
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
    bird_signature,
)
from debsync.actions.sms.settings import Provider

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
        return as_text(failure.get("code"))
    return as_text(message.get("reason"))


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
        body = json_object(response.content) or {}
        code = as_text(body.get("code"))
        return PermanentActionError(
            f"Bird refused the message: HTTP {response.status_code}"
            + (f", code {code}" if code else "")
        )

    def receipt(self, response: httpx.Response, payload: Payload, key: str) -> Receipt:
        body = json_object(response.content)
        message_id = as_text(body.get("id")) if body else None
        status = as_text(body.get("status")) if body else None
        if body is None or message_id is None or status is None:
            raise unexpected(response, self.label)
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
        body = json_object(response.content)
        return self._report(body, now) if body else None

    def _report(self, message: Mapping[str, Any], now: datetime) -> DeliveryReport | None:
        message_id, status = as_text(message.get("id")), as_text(message.get("status"))
        if message_id is None or status is None:
            return None
        return DeliveryReport(
            provider=self.name,
            provider_message_id=message_id,
            reference=as_text(message.get("reference")),
            status=_BIRD_STATUS.get(status, "unknown"),
            at=as_moment(message.get("lastStatusAt")) or as_moment(message.get("updatedAt")) or now,
            error_code=_bird_failure(message),
            provider_status=status,
        )

    def reports(self, request: InboundRequest, now: datetime) -> list[DeliveryReport]:
        """A webhook event, after its signature (``messagebird-signature`` over
        ``messagebird-request-timestamp``, URL and body) and age are checked. Only
        ``sms.outbound`` events of this channel are delivery reports."""
        self._verify(request, now)
        body = json_object(request.body)
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
