"""Settings of the ``exact`` connector (``[connectors.<instance>] type = "exact"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from debsync.connectors.base import ConnectorSettings
from debsync.model import DebtorKind

HOSTS = {
    "nl": "https://start.exactonline.nl",
    "be": "https://start.exactonline.be",
    "de": "https://start.exactonline.de",
    "uk": "https://start.exactonline.co.uk",
    "us": "https://start.exactonline.com",
    "es": "https://start.exactonline.es",
    "fr": "https://start.exactonline.fr",
}
"""The API host of each Exact Online country; an app and its tokens belong to one."""


class ExactSettings(ConnectorSettings):
    """One Exact Online app registration and the divisions it reads."""

    country: Literal["nl", "be", "de", "uk", "us", "es", "fr"] = Field(
        default="nl", description="The Exact Online country, which picks the API host."
    )
    base_url: str | None = Field(
        default=None,
        description="Overrides the host root (a sandbox or a local fake), under which "
        "/api/oauth2/... and /api/v1/{division}/... live, e.g. https://start.exactonline.nl.",
    )
    client_id: str = Field(min_length=1, description="The app's client id (App Center).")
    client_secret: SecretStr = Field(
        description='The app\'s client secret; write client_secret = { env = "EXACT_SECRET" } '
        "or a keyring reference, never the secret itself."
    )
    redirect_uri: str = Field(
        default="http://localhost:8765/callback",
        description="The redirect URI registered for the app; debsync auth listens on it when "
        "it is a localhost URL.",
    )
    divisions: list[int] | Literal["all"] = Field(
        default="all",
        description='Division numbers to read, or "all" for every division the token reaches '
        "(system/Divisions).",
    )
    debtor_kinds: dict[str, DebtorKind] = Field(
        default_factory=dict,
        description="Per-account overrides of business/consumer, by account code.",
    )

    write_back: bool = Field(
        default=False,
        description="Record each step taken as a communication note on the account "
        "(activities/CommunicationNotes) after it is sent.",
    )
    division_check_minutes: int = Field(
        default=60,
        ge=0,
        description="How often the division list and its resync signals (system/Divisions) "
        "are read, in minutes; 0 reads them every sync.",
    )

    @field_validator("divisions")
    @classmethod
    def _some_division(cls, value: list[int] | str) -> list[int] | str:
        if isinstance(value, list) and (not value or any(d <= 0 for d in value)):
            raise ValueError('name at least one division number, or write "all"')
        return value

    @property
    def api_root(self) -> str:
        """The host root without a trailing slash."""
        return (self.base_url or HOSTS[self.country]).rstrip("/")
