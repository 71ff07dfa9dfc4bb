"""``[actions.<name>]`` with ``type = "sms"``: the provider, its credentials and the sender.

Validated as a whole: every field must belong to the chosen provider, so a CM token left in a
Twilio table is reported instead of ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import AfterValidator, AnyHttpUrl, Field, SecretStr, model_validator

from debsync.actions.base import ActionSettings

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
