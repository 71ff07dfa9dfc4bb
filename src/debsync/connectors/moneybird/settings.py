"""Settings of the ``moneybird`` connector (``[connectors.<instance>] type = "moneybird"``)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from debsync.connectors.base import ConnectorSettings

DEFAULT_BASE_URL = "https://moneybird.com/api/v2"
OOB = "urn:ietf:wg:oauth:2.0:oob"
"""Moneybird's out-of-band redirect: its page shows the code to copy (its own example)."""


class MoneybirdSettings(ConnectorSettings):
    """One Moneybird administration, reached with a personal API token or through OAuth2
    (an external application's client id and secret, authorised with ``debsync auth``)."""

    administration_id: str = Field(
        pattern=r"^[0-9]{1,20}$", description="The administration's id (digits, from its URL)."
    )
    token: SecretStr | None = Field(
        default=None,
        description='Personal API token; write token = { env = "MONEYBIRD_TOKEN" } or a keyring '
        "reference, never the token itself. Either this or client_id and client_secret.",
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        description="The external OAuth application's client id "
        "(moneybird.com/user/applications/new); authorise it with debsync auth INSTANCE.",
    )
    client_secret: SecretStr | None = Field(
        default=None,
        description='The OAuth application\'s client secret; write { env = "..." } or a keyring '
        "reference, never the secret itself.",
    )
    redirect_uri: str = Field(
        default=OOB,
        description="The redirect URI registered for the OAuth application. The default shows "
        "the code on Moneybird's page for debsync auth --code; a localhost URL makes debsync "
        "auth listen for the browser.",
    )
    scope: str = Field(
        default="sales_invoices settings",
        pattern=r"^[a-z_]+( [a-z_]+)*$",
        description="OAuth scopes asked for: sales_invoices (invoices and contacts), settings "
        "(webhooks).",
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

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        oauth = self.client_id is not None or self.client_secret is not None
        if self.token is not None and oauth:
            raise ValueError("use either token or client_id and client_secret, not both")
        if self.token is None and not (self.client_id and self.client_secret):
            raise ValueError(
                "set token (a personal API token), or client_id and client_secret (OAuth, "
                "authorised with debsync auth)"
            )
        return self

    @property
    def uses_oauth(self) -> bool:
        return self.token is None
