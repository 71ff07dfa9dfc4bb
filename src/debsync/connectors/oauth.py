"""OAuth2 authorisation-code tokens kept in an instance's vault: what every platform shares.

A platform subclasses :class:`OAuthFlow` with its endpoints and its refresh rules
(:meth:`OAuthFlow.refresh_due`, and the hooks for what its token endpoint's refusals mean);
this module does the rest, once for all of them:

* the token endpoint is called form-encoded with the client credentials, and every secret
  in the call (client secret, code, refresh token) is registered with the HTTP client's
  redactor, so no token appears in a log line or a message;
* a pair that comes back is saved to the vault, durably, before anything else happens and
  before its access token is used (a refresh token that rotates is spent by the answer);
* one process refreshes at a time, under ``context.tokens.lock()``, and re-reads the vault
  under the lock: a process that finds the pair rotated by another takes it instead;
* after a 401, one refresh, unless another process already rotated the pair;
* a refresh token found spent or revoked is marked dead in the vault, so no further refresh
  is sent with it, and makes :class:`ReauthorizeError`, whose message names the way out.

The authorisation ``state`` is a timestamp and nonce signed with the client secret, so a
later ``debsync auth --redirect-url`` can check it without storing it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar
from urllib.parse import unquote, urlencode

import httpx
from pydantic import SecretStr

from debsync.connectors.base import ConnectorContext, TokenVault
from debsync.connectors.http import FatalHttpError
from debsync.errors import FatalConnectorError
from debsync.secrets import NO_TOKEN_STORE

log = logging.getLogger("debsync.connectors.oauth")

SAVE_ATTEMPTS = 3
SAVE_PAUSE = 0.5
"""A pair that cannot be saved is tried again after this, then twice this, many seconds:
a store that hiccups at that moment must not cost the authorisation."""
STATE_SECONDS = 3600
"""How long an authorisation ``state`` is accepted."""

CODE = "the authorisation code"
REFRESH = "the refresh token"
"""What a token request spends, as its messages name it."""


class ReauthorizeError(FatalConnectorError):
    """The instance's authorisation is gone (or never was): only ``debsync auth`` helps."""

    def __init__(self, platform: str, instance: str, reason: str) -> None:
        super().__init__(
            f"{platform} {instance}: {reason}; re-authorise with `debsync auth {instance}`"
        )
        self.instance = instance
        self.reason = reason


_LOCAL_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
"""One asyncio lock per instance and event loop: coroutines of one process queue here before
they take the vault's cross-process lock, which blocks the thread while it waits."""


def _local_lock(instance: str) -> asyncio.Lock:
    locks = _LOCAL_LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(instance, asyncio.Lock())


class OAuthFlow(ABC):
    """The tokens of one instance, kept in its vault; a platform's subclass adds its rules."""

    platform: ClassVar[str]
    """The connector type, first word of every message (``exact``)."""
    provider: ClassVar[str]
    """The platform's name for people (``Exact Online``)."""
    answer_keys: ClassVar[tuple[str, ...]] = ("access_token", "refresh_token")
    """What a token answer must carry; a refresh answer without a ``refresh_token`` keeps
    the one sent, where the platform does not rotate it."""

    def __init__(
        self,
        instance: str,
        context: ConnectorContext,
        *,
        client_id: str,
        client_secret: SecretStr,
        redirect_uri: str,
    ) -> None:
        self.instance = instance
        self.context = context
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._refused: dict[str, Any] | None = None

    # -- what a platform defines --------------------------------------------------------------

    @property
    @abstractmethod
    def token_url(self) -> str:
        """The token endpoint (absolute)."""

    @abstractmethod
    def authorize_endpoint(self) -> str:
        """The authorisation endpoint (absolute), without the query."""

    def authorize_params(self) -> dict[str, str]:
        """Query parameters of the authorisation URL beyond the standard ones (``scope``)."""
        return {}

    @abstractmethod
    def refresh_due(self, tokens: dict[str, Any], now: float) -> bool:
        """Whether the stored pair is to be refreshed before use at ``now`` (epoch s)."""

    def check_refreshable(self, vault: TokenVault, tokens: dict[str, Any]) -> None:
        """Raise instead of sending the stored refresh token when the platform's rules say
        it would be refused; by default nothing stops it."""
        return

    def check_after_unauthorized(self, tokens: dict[str, Any]) -> None:
        """Raise when a 401 is not to be answered with a refresh now; by default it is."""
        return

    def refusal(
        self, vault: TokenVault, error: object, description: str, what: str
    ) -> Exception | None:
        """A platform's own reading of a refused token request (``error`` and its
        ``error_description``), before the standard ones; ``None``: no special meaning."""
        return None

    async def administrations(self) -> list[tuple[str, str]]:
        """What the tokens reach, where the connector cannot list it itself."""
        raise NotImplementedError(f"{self.platform} does not list administrations")

    # -- what the connector calls ---------------------------------------------------------------

    async def access_token(self) -> str:
        """A valid access token; refreshed when :meth:`refresh_due`, the pair saved before
        it is returned."""
        tokens = self._load(self._vault())
        if not self.refresh_due(tokens, self._now()):
            return str(tokens["access_token"])
        async with self._locked() as vault:
            tokens = self._load(vault)  # another process may have refreshed meanwhile
            if self.refresh_due(tokens, self._now()):
                tokens = await self._refresh_stored(vault, tokens)
            return str(tokens["access_token"])

    async def after_unauthorized(self, rejected: str) -> str:
        """The platform answered 401 to ``rejected``: one refresh, unless another process
        already rotated the pair, and the access token to try once more."""
        async with self._locked() as vault:
            tokens = self._load(vault)
            if tokens["access_token"] != rejected:  # another process rotated the pair
                if self.refresh_due(tokens, self._now()):
                    tokens = await self._refresh_stored(vault, tokens)
                return str(tokens["access_token"])
            self.check_after_unauthorized(tokens)
            tokens = await self._refresh_stored(vault, tokens)
            return str(tokens["access_token"])

    def auth(self) -> httpx.Auth:
        """An ``httpx.Auth`` that sends the bearer token and answers a 401 with one refresh
        and one more try (:meth:`after_unauthorized`)."""
        return BearerAuth(self)

    # -- what `debsync auth` calls ---------------------------------------------------------------

    def authorize_url(self, state: str) -> str:
        """Where the user logs in and consents; the platform then redirects to the
        ``redirect_uri`` with a code."""
        query = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "state": state,
            **self.authorize_params(),
        }
        return f"{self.authorize_endpoint()}?{urlencode(query)}"

    async def exchange_code(self, code: str) -> None:
        """Exchange an authorisation code (single-use, short-lived) and save the pair."""
        form = {
            "grant_type": "authorization_code",
            "code": unquote(code.strip()),
            "redirect_uri": self.redirect_uri,
        }
        async with self._locked() as vault:
            await self._token_request(vault, form, CODE)

    async def adopt_refresh_token(self, refresh_token: str) -> None:
        """Take over a refresh token from another integration: it is spent at once for a
        pair of debsync's own (where tokens rotate, the other copy dies with it)."""
        async with self._locked() as vault:
            await self._refresh(vault, refresh_token.strip())

    def new_state(self) -> str:
        """An authorisation ``state``: a timestamp and nonce signed with the client secret."""
        body = f"{int(self._now())}.{secrets.token_urlsafe(9)}"
        return f"{body}.{self._sign(body)}"

    def state_ok(self, state: str) -> bool:
        """Whether ``state`` is one :meth:`new_state` made, less than an hour ago."""
        body, _, signature = state.rpartition(".")
        issued, _, _ = body.partition(".")
        if not issued.isdigit() or not hmac.compare_digest(signature, self._sign(body)):
            return False
        return 0 <= self._now() - int(issued) <= STATE_SECONDS

    # -- for subclasses ----------------------------------------------------------------------

    def reauthorize(self, reason: str) -> ReauthorizeError:
        return ReauthorizeError(self.platform, self.instance, reason)

    def bury(self, vault: TokenVault, reason: str) -> None:
        """Remember that the stored grant is dead, so no sync spends a call on it again."""
        tokens = vault.load()
        if tokens and not tokens.get("dead"):
            vault.save({**tokens, "dead": reason})

    def _now(self) -> float:
        return self.context.clock().timestamp()

    # -- inside ------------------------------------------------------------------------------

    def _sign(self, body: str) -> str:
        key = self.client_secret.get_secret_value().encode()
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:24]

    def _vault(self) -> TokenVault:
        if self.context.tokens is None:
            raise self.reauthorize(NO_TOKEN_STORE)
        return self.context.tokens

    def _load(self, vault: TokenVault) -> dict[str, Any]:
        tokens = vault.load()
        if not tokens or "refresh_token" not in tokens:
            raise self.reauthorize("not authorised yet")
        if tokens.get("dead"):
            raise self.reauthorize(str(tokens["dead"]))
        return tokens

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[TokenVault]:
        vault = self._vault()
        async with _local_lock(self.instance):
            with vault.lock():
                yield vault

    async def _refresh_stored(self, vault: TokenVault, tokens: dict[str, Any]) -> dict[str, Any]:
        self.check_refreshable(vault, tokens)
        return await self._refresh(vault, str(tokens["refresh_token"]))

    async def _refresh(self, vault: TokenVault, refresh_token: str) -> dict[str, Any]:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._token_request(vault, form, REFRESH)

    async def _token_request(
        self, vault: TokenVault, form: dict[str, str], what: str
    ) -> dict[str, Any]:
        """POST to the token endpoint and save the pair it answers before anything else."""
        secret = self.client_secret
        form = {**form, "client_id": self.client_id, "client_secret": secret.get_secret_value()}
        self._refused = None
        async with self.context.http.client(
            name=f"{self.platform} {self.instance}",
            headers={"Accept": "application/json"},
            secrets=[secret, form.get("refresh_token"), form.get("code")],
            error_detail=self._error_code,
        ) as http:
            try:
                response = await http.request(
                    "POST",
                    self.token_url,
                    content=urlencode(form).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            except FatalHttpError as exc:
                raise self._refusal(vault, what, exc, form.get("refresh_token")) from None
            tokens = self._save(vault, json_body(response), form.get("refresh_token"))
        log.info("%s %s: token pair rotated and saved", self.platform, self.instance)
        return tokens

    def _save(self, vault: TokenVault, body: Any, sent: str | None) -> dict[str, Any]:
        """The pair of a token answer, saved: nothing may come between the answer and this."""
        now = self._now()
        try:
            if not all(body[key] for key in self.answer_keys):
                raise ValueError
            tokens: dict[str, Any] = {
                "access_token": str(body["access_token"]),
                "refresh_token": str(body.get("refresh_token") or sent or ""),
                "issued_at": now,
                "expires_at": None,
            }
            if body.get("expires_in") is not None:  # Exact: a string, e.g. "600"
                tokens["expires_at"] = now + float(body["expires_in"])
        except (KeyError, TypeError, ValueError):
            raise FatalConnectorError(
                f"{self.platform} {self.instance}: the token endpoint answered without a "
                "usable token pair"
            ) from None
        if not tokens["refresh_token"]:
            raise FatalConnectorError(
                f"{self.platform} {self.instance}: the token endpoint answered without a "
                "refresh token"
            )
        attempt = 1
        while True:
            try:
                vault.save(tokens)
                return tokens
            except Exception as exc:  # the old refresh token may be spent: this pair is all
                failure = type(exc).__name__
            log.error(
                "%s %s: saving the new token pair failed (%s), attempt %d of %d",
                self.platform,
                self.instance,
                failure,
                attempt,
                SAVE_ATTEMPTS,
            )
            if attempt == SAVE_ATTEMPTS:
                raise self.reauthorize(
                    f"the new token pair could not be saved ({failure}), and {self.provider} "
                    "has spent the old one"
                )
            time.sleep(SAVE_PAUSE * attempt)
            attempt += 1

    def _error_code(self, response: httpx.Response) -> str | None:
        """The ``error`` of a refused token request; the whole answer is kept, since a
        platform may send a new pair even with an error, which must be saved all the same."""
        body = json_body(response)
        if not isinstance(body, dict):
            return None
        self._refused = body
        error = body.get("error")
        return error if isinstance(error, str) and error.isidentifier() else None

    def _refusal(
        self, vault: TokenVault, what: str, exc: FatalHttpError, sent: str | None
    ) -> Exception:
        body = self._refused or {}
        if "access_token" in body and "refresh_token" in body:
            self._save(vault, body, sent)
        error = body.get("error")
        description = str(body.get("error_description") or "")
        special = self.refusal(vault, error, description, what)
        if special is not None:
            return special
        if error == "invalid_client":
            return FatalConnectorError(
                f"{self.platform} {self.instance}: {self.provider} refused client_id or "
                "client_secret (invalid_client): check them against the registered app"
            )
        if error == "invalid_grant":
            return self.refused_grant(vault, what, str(error))
        return exc

    def refused_grant(self, vault: TokenVault, what: str, error: str) -> ReauthorizeError:
        """The code or refresh token was refused; a refresh token is then marked dead."""
        if what == CODE:
            reason = "the authorisation code was refused: a code is single-use and short-lived"
        else:
            reason = f"the refresh token was refused ({error}): spent, revoked or not this app's"
            self.bury(vault, reason)
        return self.reauthorize(reason)


class BearerAuth(httpx.Auth):
    """The flow's access token on every request; a 401 gets one refresh and one retry."""

    def __init__(self, flow: OAuthFlow) -> None:
        self.flow = flow

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.flow.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            await response.aread()
            token = await self.flow.after_unauthorized(token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
