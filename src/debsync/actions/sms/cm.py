"""CM.com Business Messaging (JSON gateway): submission, error codes and status reports.

CM keeps our ``reference`` and reports by it; it neither signs its reports nor offers a status
lookup. Codes from CM's SDKs: https://github.com/cmdotcom/text-sdk-dotnet.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

import httpx

from debsync.actions.base import (
    ActionError,
    ActionUnavailableError,
    InboundRequest,
    OutcomeUnknownError,
    Payload,
    PermanentActionError,
    Receipt,
)
from debsync.actions.sms.gateway import (
    Gateway,
    as_code,
    as_moment,
    as_text,
    json_object,
    unexpected,
)
from debsync.actions.sms.reports import DeliveryReport, DeliveryReportError, DeliveryStatus
from debsync.actions.sms.settings import Provider
from debsync.clock import AMSTERDAM

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
        body = json_object(response.content)
        if body is None:
            return None
        code = as_code(body.get("errorCode"))
        if code == 201:  # some messages refused: ours is the only one, its own code says why
            messages = body.get("messages")
            first = messages[0] if isinstance(messages, list) and messages else None
            message_code = (
                as_code(first.get("messageErrorCode")) if isinstance(first, dict) else None
            )
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
        body = json_object(response.content)
        messages = body.get("messages") if body else None
        first = messages[0] if isinstance(messages, list) and len(messages) == 1 else None
        reference = cm_reference(key)
        if not isinstance(first, dict) or first.get("reference") != reference:
            raise unexpected(response, self.label)
        status = first.get("status")
        if status != "Accepted":
            code = as_code(first.get("messageErrorCode"))
            if status == "Rejected":
                reason = _CM_REFUSED.get(code or 0, "see CM error codes")
                raise PermanentActionError(
                    f"CM.com rejected the message: messageErrorCode {code} ({reason})"
                )
            raise unexpected(response, self.label)
        parts = as_code(first.get("parts"))
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
        body = json_object(request.body)
        container = body.get("messages") if body else None
        found = container.get("msg") if isinstance(container, dict) else None
        items = found if isinstance(found, list) else [found]
        reports = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("status"), dict):
                raise DeliveryReportError("not a CM.com JSON status report")
            status, reference = item["status"], as_text(item.get("reference"))
            if reference is None:
                raise DeliveryReportError("CM.com status report without reference")
            code = as_text(status.get("code"))
            reports.append(
                DeliveryReport(
                    provider=self.name,
                    provider_message_id=None,
                    reference=reference,
                    status=_CM_REPORT_STATUS.get(code or "", "unknown"),
                    at=as_moment(item.get("received"), naive=AMSTERDAM) or now,
                    error_code=as_text(status.get("errorCode")),
                    provider_status=code,
                )
            )
        return reports
