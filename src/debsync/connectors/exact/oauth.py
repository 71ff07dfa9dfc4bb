"""Exact Online's OAuth2 tokens: the authorisation-code grant and the refresh rules.

Exact's rules (docs/auth.md has the sources) and what this module does about each:

* the access token lives 600 s, and a refresh sooner than 570 s after the last one is refused
  (``TooEarlyToRefreshTokens``) and counts as an error against the key's hourly budget: a
  refresh is sent only in the access token's last 30 s, never sooner than 570 s after issue;
* the refresh token is single-use and rotates on every refresh: the new pair is saved to the
  vault, durably, before anything else happens, and before the new access token is used;
  one process refreshes at a time, under ``context.tokens.lock()``, and a process that finds
  the token rotated by another under the lock takes the rotated one instead of refreshing;
* a refresh token lives 30 days: one older than 25 days is refreshed at the first occasion,
  and one found spent, revoked or expired makes :class:`ReauthorizeError`, remembered in the
  vault so no further refresh is sent with it (each would be another error counted).

Tokens appear in no log line and no message: they are registered with the HTTP client's
redactor and the messages here name none.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlencode

import httpx

from debsync.connectors.base import ConnectorContext, TokenVault
from debsync.connectors.exact.settings import ExactSettings
from debsync.connectors.http import FatalHttpError
from debsync.errors import FatalConnectorError, RetryableConnectorError
from debsync.secrets import NO_TOKEN_STORE

log = logging.getLogger("debsync.connectors.exact")

REFRESH_MARGIN = 30.0
"""Seconds before the access token expires from which it is refreshed."""
REFRESH_FLOOR = 570.0
"""Seconds after a pair was issued before which Exact refuses to refresh it."""
PROACTIVE_AGE = 25 * 86400.0
"""A refresh token this old is refreshed at the first occasion, well before it dies."""
REFRESH_LIFETIME = 30 * 86400.0
"""How long Exact keeps an unused refresh token."""
SAVE_ATTEMPTS = 3
SAVE_PAUSE = 0.5
"""A pair that cannot be saved is tried again after this, then twice this, many seconds:
a store that hiccups at that moment must not cost the authorisation."""
STATE_SECONDS = 3600
"""How long an authorisation ``state`` is accepted."""

EXPIRED = "the refresh token has expired (Exact keeps one 30 days)"

TOKEN_PATH = "/api/oauth2/token"
AUTHORIZE_PATH = "/api/oauth2/auth"


class ReauthorizeError(FatalConnectorError):
    """The instance's authorisation is gone (or never was): only ``debsync auth`` helps."""

    def __init__(self, instance: str, reason: str) -> None:
        super().__init__(f"exact {instance}: {reason}; re-authorise with `debsync auth {instance}`")
        self.instance = instance
        self.reason = reason


def refresh_due(tokens: dict[str, Any], now: float) -> bool:
    """Whether the pair in ``tokens`` is to be refreshed at ``now`` (epoch seconds)."""
    issued = float(tokens["issued_at"])
    if now - issued < REFRESH_FLOOR:
        return False
    return now >= float(tokens["expires_at"]) - REFRESH_MARGIN or now - issued >= PROACTIVE_AGE


_LOCAL_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
"""One asyncio lock per instance and event loop: coroutines of one process queue here before
they take the vault's cross-process lock, which blocks the thread while it waits."""


def _local_lock(instance: str) -> asyncio.Lock:
    locks = _LOCAL_LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(instance, asyncio.Lock())


class ExactOAuth:
    """The tokens of one Exact Online instance, kept in its vault."""

    def __init__(self, instance: str, settings: ExactSettings, context: ConnectorContext) -> None:
        self.instance = instance
        self.settings = settings
        self.context = context
        self._refused: dict[str, Any] | None = None

    # -- what the connector calls ----------------------------------------------------------

    async def access_token(self) -> str:
        """A valid access token; refreshed per the rules (module docstring), the rotated
        pair saved before it is returned."""
        tokens = self._load(self._vault())
        if not refresh_due(tokens, self._now()):
            return str(tokens["access_token"])
        async with self._locked() as vault:
            tokens = self._load(vault)  # another process may have refreshed meanwhile
            if refresh_due(tokens, self._now()):
                tokens = await self._refresh_stored(vault, tokens)
            return str(tokens["access_token"])

    async def after_unauthorized(self, rejected: str) -> str:
        """Exact answered 401 to ``rejected``: one refresh, unless another process already
        rotated the pair, and the access token to try once more."""
        async with self._locked() as vault:
            tokens = self._load(vault)
            if tokens["access_token"] != rejected:  # another process rotated the pair
                if refresh_due(tokens, self._now()):
                    tokens = await self._refresh_stored(vault, tokens)
                return str(tokens["access_token"])
            age = self._now() - float(tokens["issued_at"])
            if age < REFRESH_FLOOR:
                raise RetryableConnectorError(
                    f"exact {self.instance}: the access token was refused {age:.0f} s after "
                    f"it was issued; Exact refuses a refresh before {REFRESH_FLOOR:.0f} s, so "
                    "it is refreshed at a later sync"
                )
            tokens = await self._refresh_stored(vault, tokens)
            return str(tokens["access_token"])

    # -- what `debsync auth` calls ---------------------------------------------------------

    def authorize_url(self, state: str) -> str:
        """Where the user logs in and consents; Exact then redirects to ``redirect_uri``."""
        query = urlencode(
            {
                "client_id": self.settings.client_id,
                "redirect_uri": self.settings.redirect_uri,
                "response_type": "code",
                "state": state,
            }
        )
        return f"{self.settings.api_root}{AUTHORIZE_PATH}?{query}"

    async def exchange_code(self, code: str) -> None:
        """Exchange an authorisation code (single-use, short-lived) and save the pair."""
        form = {
            "grant_type": "authorization_code",
            "code": unquote(code.strip()),
            "redirect_uri": self.settings.redirect_uri,
        }
        async with self._locked() as vault:
            await self._token_request(vault, form, "the authorisation code")

    async def adopt_refresh_token(self, refresh_token: str) -> None:
        """Take over a refresh token from another integration: it is spent at once for a
        pair of debsync's own, so the other integration's copy dies with it."""
        async with self._locked() as vault:
            await self._refresh(vault, refresh_token.strip())

    def new_state(self) -> str:
        """An authorisation ``state`` that a later ``debsync auth --redirect-url`` can check
        without storing it: a timestamp and nonce signed with the client secret."""
        body = f"{int(self._now())}.{secrets.token_urlsafe(9)}"
        return f"{body}.{self._sign(body)}"

    def state_ok(self, state: str) -> bool:
        """Whether ``state`` is one :meth:`new_state` made, less than an hour ago."""
        body, _, signature = state.rpartition(".")
        issued, _, _ = body.partition(".")
        if not issued.isdigit() or not hmac.compare_digest(signature, self._sign(body)):
            return False
        return 0 <= self._now() - int(issued) <= STATE_SECONDS

    async def divisions(self) -> list[tuple[str, str]]:
        """The divisions the token reaches, as (number, description): those of
        ``system/Divisions`` in the user's current division (``current/Me``)."""
        token = await self.access_token()
        try:
            return await self._divisions(token)
        except FatalHttpError as exc:
            if exc.status != 401:
                raise
        return await self._divisions(await self.after_unauthorized(token))

    # -- inside ------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.context.clock().timestamp()

    def _sign(self, body: str) -> str:
        key = self.settings.client_secret.get_secret_value().encode()
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:24]

    def _vault(self) -> TokenVault:
        if self.context.tokens is None:
            raise ReauthorizeError(self.instance, NO_TOKEN_STORE)
        return self.context.tokens

    def _load(self, vault: TokenVault) -> dict[str, Any]:
        tokens = vault.load()
        if not tokens or "refresh_token" not in tokens:
            raise ReauthorizeError(self.instance, "not authorised yet")
        if tokens.get("dead"):
            raise ReauthorizeError(self.instance, str(tokens["dead"]))
        return tokens

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[TokenVault]:
        vault = self._vault()
        async with _local_lock(self.instance):
            with vault.lock():
                yield vault

    async def _refresh_stored(self, vault: TokenVault, tokens: dict[str, Any]) -> dict[str, Any]:
        """Refresh the stored pair, unless its refresh token is past its 30 days: sending it
        would only cost one of the key's errors."""
        if self._now() - float(tokens["issued_at"]) >= REFRESH_LIFETIME:
            self._bury(vault, EXPIRED)
            raise ReauthorizeError(self.instance, EXPIRED)
        return await self._refresh(vault, str(tokens["refresh_token"]))

    async def _refresh(self, vault: TokenVault, refresh_token: str) -> dict[str, Any]:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._token_request(vault, form, "the refresh token")

    async def _token_request(
        self, vault: TokenVault, form: dict[str, str], what: str
    ) -> dict[str, Any]:
        """POST to the token endpoint and save the pair it answers before anything else."""
        secret = self.settings.client_secret
        form = {
            **form,
            "client_id": self.settings.client_id,
            "client_secret": secret.get_secret_value(),
        }
        self._refused = None
        async with self.context.http.client(
            name=f"exact {self.instance}",
            base_url=self.settings.api_root,
            headers={"Accept": "application/json"},
            secrets=[secret, form.get("refresh_token"), form.get("code")],
            error_detail=self._error_code,
        ) as http:
            try:
                response = await http.request(
                    "POST",
                    TOKEN_PATH,
                    content=urlencode(form).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            except FatalHttpError as exc:
                raise self._refusal(vault, what, exc) from None
            tokens = self._save(vault, _body(response))
        log.info("exact %s: token pair rotated and saved", self.instance)
        return tokens

    def _save(self, vault: TokenVault, body: Any) -> dict[str, Any]:
        """The pair of a token answer, saved: nothing may come between the answer and this."""
        now = self._now()
        try:
            tokens = {
                "access_token": str(body["access_token"]),
                "refresh_token": str(body["refresh_token"]),
                "issued_at": now,
                "expires_at": now + float(body["expires_in"]),  # a string, e.g. "600"
            }
        except (KeyError, TypeError, ValueError):
            raise FatalConnectorError(
                f"exact {self.instance}: the token endpoint answered without a usable token pair"
            ) from None
        attempt = 1
        while True:
            try:
                vault.save(tokens)
                return tokens
            except Exception as exc:  # the old refresh token is spent: this pair is all there is
                failure = type(exc).__name__
            log.error(
                "exact %s: saving the new token pair failed (%s), attempt %d of %d",
                self.instance,
                failure,
                attempt,
                SAVE_ATTEMPTS,
            )
            if attempt == SAVE_ATTEMPTS:
                raise ReauthorizeError(
                    self.instance,
                    f"the new token pair could not be saved ({failure}), and Exact has spent "
                    "the old one",
                )
            time.sleep(SAVE_PAUSE * attempt)
            attempt += 1

    def _error_code(self, response: httpx.Response) -> str | None:
        """The ``error`` of a refused token request; the whole answer is kept, since Exact
        may send a new pair even with an error, which must be saved all the same."""
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        self._refused = body
        error = body.get("error")
        return error if isinstance(error, str) and error.isidentifier() else None

    def _refusal(self, vault: TokenVault, what: str, exc: FatalHttpError) -> Exception:
        body = self._refused or {}
        if "access_token" in body and "refresh_token" in body:
            self._save(vault, body)
        error = body.get("error")
        description = str(body.get("error_description") or "")
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
        expired = error == "invalid_request" and "expired" in description
        spent = error == "invalid_grant" or (  # 2018's answer: 401 "Old refresh token used."
            error == "unauthorized_client" and "refresh token" in description.lower()
        )
        if spent or expired:
            if what == "the authorisation code":
                reason = "the authorisation code was refused: a code is single-use and short-lived"
            elif expired:
                reason = EXPIRED
            else:
                reason = (
                    f"the refresh token was refused ({error}): spent, revoked or not this app's"
                )
            if what == "the refresh token":
                self._bury(vault, reason)
            return ReauthorizeError(self.instance, reason)
        return exc

    def _bury(self, vault: TokenVault, reason: str) -> None:
        """Remember that the stored grant is dead, so no sync spends an error on it again."""
        tokens = vault.load()
        if tokens and not tokens.get("dead"):
            vault.save({**tokens, "dead": reason})

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
