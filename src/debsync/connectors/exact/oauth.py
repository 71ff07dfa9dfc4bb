"""Exact Online's OAuth2 rules, on the shared flow of :mod:`debsync.connectors.oauth`.

Exact's rules (docs/auth.md has the sources) and what this module does about each:

* the access token lives 600 s, and a refresh sooner than 570 s after the last one is refused
  (``TooEarlyToRefreshTokens``) and counts as an error against the key's hourly budget: a
  refresh is sent only in the access token's last 30 s, never sooner than 570 s after issue,
  and a 401 sooner than that waits for a later sync;
* the refresh token is single-use and rotates on every refresh (the shared flow saves the new
  pair before anything else, one process at a time);
* a refresh token lives 30 days: one older than 25 days is refreshed at the first occasion,
  one past 30 days is not sent at all, and Exact's own ways of saying "expired", "too early"
  and "spent" are read from its error bodies.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from debsync.connectors.base import ConnectorContext, TokenVault
from debsync.connectors.exact.settings import ExactSettings
from debsync.connectors.http import FatalHttpError
from debsync.connectors.oauth import CODE, REFRESH, OAuthFlow, ReauthorizeError
from debsync.errors import FatalConnectorError, RetryableConnectorError

__all__ = ["PROACTIVE_AGE", "ExactOAuth", "ReauthorizeError", "refresh_due"]

REFRESH_MARGIN = 30.0
"""Seconds before the access token expires from which it is refreshed."""
REFRESH_FLOOR = 570.0
"""Seconds after a pair was issued before which Exact refuses to refresh it."""
PROACTIVE_AGE = 25 * 86400.0
"""A refresh token this old is refreshed at the first occasion, well before it dies."""
REFRESH_LIFETIME = 30 * 86400.0
"""How long Exact keeps an unused refresh token."""

EXPIRED = "the refresh token has expired (Exact keeps one 30 days)"

TOKEN_PATH = "/api/oauth2/token"
AUTHORIZE_PATH = "/api/oauth2/auth"


def refresh_due(tokens: dict[str, Any], now: float) -> bool:
    """Whether the pair in ``tokens`` is to be refreshed at ``now`` (epoch seconds)."""
    issued = float(tokens["issued_at"])
    if now - issued < REFRESH_FLOOR:
        return False
    return now >= float(tokens["expires_at"]) - REFRESH_MARGIN or now - issued >= PROACTIVE_AGE


class ExactOAuth(OAuthFlow):
    """The tokens of one Exact Online instance, kept in its vault."""

    platform: ClassVar[str] = "exact"
    provider: ClassVar[str] = "Exact Online"
    answer_keys: ClassVar[tuple[str, ...]] = ("access_token", "refresh_token", "expires_in")

    def __init__(self, instance: str, settings: ExactSettings, context: ConnectorContext) -> None:
        super().__init__(
            instance,
            context,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            redirect_uri=settings.redirect_uri,
        )
        self.settings = settings

    @property
    def token_url(self) -> str:
        return f"{self.settings.api_root}{TOKEN_PATH}"

    def authorize_endpoint(self) -> str:
        return f"{self.settings.api_root}{AUTHORIZE_PATH}"

    def refresh_due(self, tokens: dict[str, Any], now: float) -> bool:
        return refresh_due(tokens, now)

    def check_refreshable(self, vault: TokenVault, tokens: dict[str, Any]) -> None:
        """A refresh token past its 30 days is not sent: it would only cost one of the
        key's errors."""
        if self._now() - float(tokens["issued_at"]) >= REFRESH_LIFETIME:
            self.bury(vault, EXPIRED)
            raise self.reauthorize(EXPIRED)

    def check_after_unauthorized(self, tokens: dict[str, Any]) -> None:
        age = self._now() - float(tokens["issued_at"])
        if age < REFRESH_FLOOR:
            raise RetryableConnectorError(
                f"exact {self.instance}: the access token was refused {age:.0f} s after "
                f"it was issued; Exact refuses a refresh before {REFRESH_FLOOR:.0f} s, so "
                "it is refreshed at a later sync"
            )

    def refusal(
        self, vault: TokenVault, error: object, description: str, what: str
    ) -> Exception | None:
        if error == "access_denied" and "not expired" in description:
            return RetryableConnectorError(
                f"exact {self.instance}: Exact refused the refresh as too early "
                "(TooEarlyToRefreshTokens: one refresh per 570 s); it is tried again later, "
                "and if this recurs, check this machine's clock"
            )
        if error == "invalid_client":
            return FatalConnectorError(
                f"exact {self.instance}: Exact refused client_id or client_secret "
                "(invalid_client): check them against the app in the Exact App Center"
            )
        if error == "invalid_request" and "expired" in description:
            if what == CODE:
                return self.refused_grant(vault, what, error)
            if what == REFRESH:
                self.bury(vault, EXPIRED)
            return self.reauthorize(EXPIRED)
        if error == "unauthorized_client" and "refresh token" in description.lower():
            return self.refused_grant(vault, what, error)  # 2018's "Old refresh token used."
        return None

    async def administrations(self) -> list[tuple[str, str]]:
        """The divisions the token reaches, as (number, description): those of
        ``system/Divisions`` in the user's current division (``current/Me``)."""
        token = await self.access_token()
        try:
            return await self._divisions(token)
        except FatalHttpError as exc:
            if exc.status != 401:
                raise
        return await self._divisions(await self.after_unauthorized(token))

    async def _divisions(self, token: str) -> list[tuple[str, str]]:
        async with self.context.http.client(
            name=f"exact {self.instance}",
            base_url=self.settings.api_root,
            headers={"Accept": "application/json", "Authorization": f"Bearer {token}"},
        ) as http:
            me = await http.get_json("/api/v1/current/Me", params={"$select": "CurrentDivision"})
            current = _results(me)[0]["CurrentDivision"]
            found: list[tuple[str, str]] = []
            async for response in http.paginate(
                f"/api/v1/{current}/system/Divisions",
                params={"$select": "Code,Description"},
                next_page=_next,
            ):
                for row in _results(_body(response)):
                    found.append((str(row["Code"]), str(row.get("Description") or "")))
        return found


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _next(response: httpx.Response) -> str | None:
    """The ``__next`` link of an OData page."""
    body = _body(response)
    data = body.get("d") if isinstance(body, dict) else None
    link = data.get("__next") if isinstance(data, dict) else None
    return link if isinstance(link, str) else None


def _results(answer: Any) -> list[dict[str, Any]]:
    """The records of an OData answer: ``{"d": {"results": [...]}}`` or ``{"d": [...]}``."""
    data = answer.get("d") if isinstance(answer, dict) else None
    if isinstance(data, dict):
        data = data.get("results")
    if not isinstance(data, list) or not data:
        raise FatalConnectorError("exact: an answer without the records asked for")
    return data
