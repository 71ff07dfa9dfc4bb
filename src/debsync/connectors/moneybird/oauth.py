"""Moneybird's OAuth2 flow, on the shared one of :mod:`debsync.connectors.oauth`.

What Moneybird documents (docs/auth.md has the sources): authorisation at
``https://moneybird.com/oauth/authorize`` with ``client_id``, ``redirect_uri``,
``response_type=code`` and ``scope``; the code and refresh grants at ``/oauth/token``. Its
access tokens currently do not expire and its answer carries no ``expires_in``, but expiry
may come: an ``expires_in`` is honoured (refresh in the last minute), and a 401 is answered
with one refresh. A refresh answer without a ``refresh_token`` keeps the one sent.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from debsync.connectors.base import ConnectorContext
from debsync.connectors.moneybird.settings import MoneybirdSettings
from debsync.connectors.oauth import OAuthFlow

REFRESH_MARGIN = 60.0
"""Seconds before an announced expiry from which the access token is refreshed."""


class MoneybirdOAuth(OAuthFlow):
    """The tokens of one Moneybird instance authorised through an external application."""

    platform: ClassVar[str] = "moneybird"
    provider: ClassVar[str] = "Moneybird"
    answer_keys: ClassVar[tuple[str, ...]] = ("access_token",)

    def __init__(
        self, instance: str, settings: MoneybirdSettings, context: ConnectorContext
    ) -> None:
        assert settings.client_id is not None and settings.client_secret is not None
        super().__init__(
            instance,
            context,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            redirect_uri=settings.redirect_uri,
        )
        self.settings = settings
        url = urlsplit(settings.base_url)
        self._root = f"{url.scheme}://{url.netloc}/oauth"  # next to /api/v2, on one host

    @property
    def token_url(self) -> str:
        return f"{self._root}/token"

    def authorize_endpoint(self) -> str:
        return f"{self._root}/authorize"

    def authorize_params(self) -> dict[str, str]:
        return {"scope": self.settings.scope}

    def refresh_due(self, tokens: dict[str, Any], now: float) -> bool:
        expires = tokens.get("expires_at")
        return expires is not None and now >= float(expires) - REFRESH_MARGIN
