"""The ``eboekhouden`` connector's settings: the ``[connectors.<name>]`` table with
``type = "eboekhouden"``."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from debsync.connectors.base import ConnectorSettings

MAX_PAGE_SIZE = 2000
"""The largest ``limit`` e-Boekhouden's list endpoints accept (docs/connectors/eboekhouden.md)."""


class EboekhoudenSettings(ConnectorSettings):
    """``[connectors.<name>]`` with ``type = "eboekhouden"``."""

    api: Literal["rest", "soap"] = Field(
        default="rest",
        description="'rest' (the current API, with an API token) or 'soap' (the legacy API, "
        "for administrations that only have SOAP security codes).",
    )
    token: SecretStr | None = Field(
        default=None,
        description="The REST API token (Beheer > Inrichting > Koppelingen > API); write "
        'token = { env = "EB_TOKEN" } or { keyring = "debsync/..." }. Required for api = "rest".',
    )
    source: str = Field(
        pattern=r"^\w{1,10}$",
        description="Code naming this integration to e-Boekhouden: 1-10 letters, digits or "
        "underscores, e.g. 'debsync'.",
    )
    base_url: str = Field(
        default="https://api.e-boekhouden.nl",
        description="The REST API root, under which /v1/session lives. Override only to point "
        "at a test server.",
    )
    page_size: int = Field(
        default=MAX_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description="Open items per list call (limit); the API allows at most 2000.",
    )
    calls_per_minute: int = Field(
        default=300,
        ge=1,
        le=60_000,
        description="Requests at most this often, one at a time: e-Boekhouden publishes no "
        "rate limit, so the default is conservative. A 429 is still waited out.",
    )
    default_payment_term_days: int = Field(
        default=30,
        ge=0,
        le=365,
        description="Days from invoice date to due date when a mutation has no payment term "
        "(30: the statutory term of art. 6:119a BW).",
    )
    soap_url: str = Field(
        default="https://soap.e-boekhouden.nl/soap.asmx",
        description="The legacy SOAP endpoint (api = 'soap').",
    )
    username: str | None = Field(default=None, description="SOAP user name (api = 'soap').")
    security_code_1: SecretStr | None = Field(
        default=None,
        description="SOAP security code 1 (Beveiligingscode 1); a secret reference.",
    )
    security_code_2: SecretStr | None = Field(
        default=None,
        description="SOAP security code 2 (Beveiligingscode 2, a GUID); a secret reference.",
    )

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.api == "rest" and self.token is None:
            raise ValueError("api = 'rest' needs token (the e-Boekhouden API token)")
        if self.api == "soap":
            missing = [
                name
                for name in ("username", "security_code_1", "security_code_2")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"api = 'soap' needs {', '.join(missing)}")
        return self
