"""Signed webhooks (``type = "webhook"``): a ``debsync.event/v1`` JSON event per dunning step.

Other systems learn what debsync did, e.g. so a sales team stops delivering to a debtor who
got an aanmaning. The event carries ids, invoice numbers, amounts and the deadline; the
debtor's name only with ``include_names = true`` (data minimisation). docs/actions/webhook.md
documents the event and how to verify it.

The request is signed and sent through :class:`~debsync.actions.http.SignedChannel`, as the
agency's are, which maps answers and transport failures to what the outbox does next. The
action is idempotent: every request carries the outbox key as ``Idempotency-Key`` (and the
event its ``id``), which is stable across retries, so the receiver deduplicates and a resend
is safe. The payload helpers here (:func:`utc_timestamp`, :func:`amount_text`) are the
agency's too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field

from debsync import hookimpl
from debsync.actions.base import ActionSettings, MessageContext, Payload, Receipt
from debsync.actions.http import HttpUrl, SignedHttpAction, SignedHttpSettings
from debsync.hookspecs import RegisterAction
from debsync.model import quantize

EVENT_SCHEMA = "debsync.event/v1"


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
