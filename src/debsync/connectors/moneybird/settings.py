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
        description="What to do with invoices Moneybird's own workflow already reminds: not yet "
        "implemented beyond the setting (see docs/connectors/moneybird.md).",
    )
    write_back: bool = Field(
        default=False,
        description="Write notes back to Moneybird after a step: not yet implemented.",
    )
