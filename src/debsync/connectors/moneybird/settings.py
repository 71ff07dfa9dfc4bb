"""Settings of the ``moneybird`` connector (``[connectors.<instance>] type = "moneybird"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from debsync.connectors.base import ConnectorSettings

DEFAULT_BASE_URL = "https://moneybird.com/api/v2"


class MoneybirdSettings(ConnectorSettings):
    """One Moneybird administration reached with a personal API token."""

    administration_id: str = Field(
        pattern=r"^[0-9]{1,20}$", description="The administration's id (digits, from its URL)."
    )
    token: SecretStr = Field(
        description='Personal API token; write token = { env = "MONEYBIRD_TOKEN" } or a keyring '
        "reference, never the token itself."
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="The API root under which /{administration_id}/sales_invoices.json lives; "
        "point it at a local fake for tests.",
    )
    period: str = Field(
        default="20000101..20991231",
        pattern=r"^[0-9]{8}\.\.[0-9]{8}$",
        description="The invoice-date period asked for; explicit and wide, because Moneybird's "
        "default (this_year) would hide older open invoices.",
    )
    per_page: int = Field(default=100, gt=0, le=100, description="Invoices per page (max 100).")
    native_reminders: Literal["pause", "respect", "ignore"] = Field(
        default="respect",
        description="Invoices Moneybird's own workflow reminds (reminder_count, next_reminder, "
        'state reminded): "respect" leaves them to Moneybird (debsync does not dun them), '
        '"pause" pauses Moneybird\'s reminders for them once so debsync duns, "ignore" does '
        "neither.",
    )
    write_back: bool = Field(
        default=False,
        description="After a step is sent, add a note to each of its sales invoices in "
        "Moneybird (one per invoice and step).",
    )
    mark_dubious_on_handoff: bool = Field(
        default=False,
        description="With write_back: mark a sales invoice as dubious in Moneybird when it is "
        "handed to a collection agency.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description='The signing secret debsync webhooks register printed; write { env = "..." } '
        "or a keyring reference, never the secret itself.",
    )
