"""The token endpoint of the Exact Online fake, with the rules the real one enforces.

What it holds to (docs/auth.md, ``../shared/research/bookkeeping-apis.md`` §1.1):

* a token answer is ``{"access_token", "token_type": "bearer", "expires_in": "600",
  "refresh_token"}`` with ``expires_in`` a string;
* a refresh token is used once: every refresh returns a new one, and the spent one answers
  400 ``invalid_grant`` ever after;
* a refresh sooner than 570 s after the chain's last token was issued answers 400
  ``access_denied`` "Rate limit exceeded: access_token not expired" with the header
  ``Reason: TooEarlyToRefreshTokens``;
* a refresh token older than 30 days answers 400 ``invalid_request`` "The refresh token
  expired at …";
* an authorisation code is used once, with the redirect URI it was issued for.

``GET /api/oauth2/auth`` plays the consenting user: it redirects to the redirect URI with a
fresh code and the state, as Exact does after the user logs in and agrees.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

import httpx

ACCESS_SECONDS = 600
REFRESH_FLOOR = 570
REFRESH_DAYS = 30


@dataclass
class _Grant:
    """One refresh token and what it belongs to."""

    chain: int
    issued_at: float


class FakeExactOAuth:
    """The token endpoint of the Exact fake: rotation, spent-token and too-early errors."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        client_id: str = "fake-client",
        client_secret: str = "fake-secret",
    ) -> None:
        self.clock = clock
        self.client_id = client_id
        self.client_secret = client_secret
        self.refreshes = 0
        """Successful refreshes."""
        self.exchanges = 0
        """Successful code exchanges."""
        self.errors: list[str] = []
        """The ``error`` of every refused token request, in order."""
        self.spent: set[str] = set()
        self.delay = 0.0
        """Seconds each token request takes: tests widen a race window with it."""
        self._lock = threading.Lock()
        self._grants: dict[str, _Grant] = {}  # live refresh tokens
        self._access: dict[str, float] = {}  # access token -> expiry
        self._chain_issued: dict[int, float] = {}  # chain -> last issue
        self._codes: dict[str, str] = {}  # code -> redirect URI
        self._chains = 0

    # -- for tests -----------------------------------------------------------------------

    def issue(self) -> dict[str, str]:
        """A fresh pair, as if a user had just authorised (for tests to seed a vault)."""
        with self._lock:
            self._chains += 1
            return self._pair(self._chains)

    def valid(self, access_token: str) -> bool:
        """Whether the API accepts ``access_token`` now (its routes answer 401 otherwise)."""
        with self._lock:
            expiry = self._access.get(access_token)
            return expiry is not None and self.clock() < expiry

    def revoke(self) -> None:
        """The user withdrew the app's access in Exact Online: every token dies."""
        with self._lock:
            self.spent.update(self._grants)
            self._grants.clear()
            self._access.clear()

    def code(self, redirect_uri: str) -> str:
        """A fresh authorisation code for ``redirect_uri``, URL-unsafe like Exact's."""
        with self._lock:
            code = f"stampNL001.{secrets.token_urlsafe(12)}!{secrets.token_urlsafe(8)}"
            self._codes[code] = redirect_uri
            return code

    # -- the endpoint --------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """``GET /api/oauth2/auth`` and ``POST /api/oauth2/token``."""
        path = request.url.path
        if path == "/api/oauth2/auth" and request.method == "GET":
            return self._authorize(request)
        if path != "/api/oauth2/token":
            return httpx.Response(404, text="not found")
        if request.method != "POST":
            return httpx.Response(405, text="method not allowed")
        if self.delay:
            time.sleep(self.delay)
        form = {k: v[-1] for k, v in parse_qs(request.content.decode()).items()}
        with self._lock:
            response = self._token(form)
        if response.status_code != 200:
            self.errors.append(json.loads(response.content)["error"])
        return response

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        redirect = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id or not redirect:
            return httpx.Response(400, text="unknown client or no redirect_uri")
        if params.get("response_type") != "code":
            return httpx.Response(400, text="response_type must be code")
        query = {"code": self.code(redirect)}
        if "state" in params:
            query["state"] = params["state"]
        return httpx.Response(302, headers={"Location": f"{redirect}?{urlencode(query)}"})

    def _token(self, form: dict[str, str]) -> httpx.Response:
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return _error(400, "invalid_client", "The client credentials are invalid.")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            redirect = self._codes.pop(form.get("code", ""), None)
            if redirect is None:
                return _error(400, "invalid_grant", "The authorization code is invalid.")
            if redirect != form.get("redirect_uri"):
                return _error(400, "invalid_grant", "The redirect URI does not match.")
            self._chains += 1
            self.exchanges += 1
            return _ok(self._pair(self._chains))
        if grant_type == "refresh_token":
            return self._refresh(form.get("refresh_token", ""))
        return _error(400, "unsupported_grant_type", "The grant type is not supported.")

    def _refresh(self, token: str) -> httpx.Response:
        grant = self._grants.get(token)
        if grant is None:
            return _error(400, "invalid_grant", "The refresh token is invalid or was used.")
        now = self.clock()
        expires = grant.issued_at + REFRESH_DAYS * 86400
        if now >= expires:
            at = datetime.fromtimestamp(expires, UTC).strftime("%m/%d/%Y %I:%M:%S %p")
            current = datetime.fromtimestamp(now, UTC).strftime("%m/%d/%Y %I:%M:%S %p")
            return _error(
                400,
                "invalid_request",
                f"The refresh token expired at {at} and it is now {current}.",
            )
        if now - self._chain_issued[grant.chain] < REFRESH_FLOOR:
            response = _error(400, "access_denied", "Rate limit exceeded: access_token not expired")
            response.headers["Reason"] = "TooEarlyToRefreshTokens"
            return response
        del self._grants[token]
        self.spent.add(token)
        self.refreshes += 1
        return _ok(self._pair(grant.chain))

    def _pair(self, chain: int) -> dict[str, str]:
        now = self.clock()
        access = f"AAEAA{secrets.token_urlsafe(24)}"
        refresh = f"Gcp7!IAAAA{secrets.token_urlsafe(24)}"
        self._access[access] = now + ACCESS_SECONDS
        self._grants[refresh] = _Grant(chain, now)
        self._chain_issued[chain] = now
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": str(ACCESS_SECONDS),
            "refresh_token": refresh,
        }


def _ok(body: dict[str, str]) -> httpx.Response:
    return httpx.Response(200, json=body, headers={"Cache-Control": "no-store"})


def _error(status: int, error: str, description: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "error_description": description})
