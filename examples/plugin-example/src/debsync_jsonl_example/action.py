"""A notice in a team chat (Slack, Mattermost, Teams incoming webhooks) when a debtor reaches
a step, e.g. so the sales team stops delivering. It reaches colleagues, not the debtor, and
carries ids, the step and the amount open: no e-mail addresses or phone numbers."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from babel.numbers import format_currency
from pydantic import Field, SecretStr

from debsync.actions.base import (
    Action,
    ActionSettings,
    ActionUnavailableError,
    MessageContext,
    OutcomeUnknownError,
    PermanentActionError,
    Receipt,
    RetryableActionError,
)

TEXT = {
    "nl": "Debiteur {debtor} ({name}) heeft stap '{step}' bereikt: {count} factuur/facturen, "
    "{open} open. Graag niet meer leveren op rekening tot de betaling binnen is.",
    "en": "Debtor {debtor} ({name}) reached step '{step}': {count} invoice(s), {open} "
    "outstanding. Please stop delivering on credit until payment arrives.",
}


class ChatWebhookSettings(ActionSettings):
    url: SecretStr = Field(description="The incoming-webhook URL (a secret: use { env = ... }).")
    language: str = Field(default="nl", pattern="^(nl|en)$", description="Language of the notice.")
    timeout: float = Field(default=10.0, gt=0, description="Seconds before giving up a request.")


class ChatWebhookAction(Action[ChatWebhookSettings]):
    type_name: ClassVar[str] = "chat-webhook"
    Settings: ClassVar[type[ActionSettings]] = ChatWebhookSettings
    channel: ClassVar[str] = "webhook"
    idempotent: ClassVar[bool] = False  # chat webhooks post every request they receive

    async def __aenter__(self) -> ChatWebhookAction:
        self._client = httpx.AsyncClient(timeout=self.settings.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    def render(self, context: MessageContext) -> dict[str, Any]:
        language = self.settings.language
        locale = "nl_NL" if language == "nl" else "en_GB"
        text = TEXT[language].format(
            debtor=context.debtor.external_id,
            name=context.debtor.name,
            step=context.step,
            count=len(context.invoices),
            open=format_currency(context.principal, context.currency, locale=locale),
        )
        return {"text": text}

    async def send(self, payload: dict[str, Any], idempotency_key: str) -> Receipt:
        try:
            response = await self._client.post(self.settings.url.get_secret_value(), json=payload)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RetryableActionError(f"chat webhook unreachable: {type(exc).__name__}") from None
        except httpx.TimeoutException as exc:
            raise OutcomeUnknownError(f"no answer after posting: {type(exc).__name__}") from None
        status = response.status_code
        if status in (401, 403, 404):
            raise ActionUnavailableError(f"the chat webhook refused us (HTTP {status}): revoked?")
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After")
            raise RetryableActionError(
                f"chat webhook answered HTTP {status}",
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if status >= 400:
            raise PermanentActionError(f"chat webhook rejected the notice (HTTP {status})")
        return Receipt(details={"status": status})

    def preview(self, payload: dict[str, Any]) -> str:
        return str(payload["text"])
