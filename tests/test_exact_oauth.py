"""ExactOAuth against the fake token endpoint over real loopback HTTP, with tokens in a real
encrypted store vault: when a refresh is sent (and when never), rotation, the single-use rule,
a 401, expiry and revocation, and that no token reaches a log line or a message."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from debsync.connectors import oauth as oauth_module
from debsync.connectors.base import ConnectorContext
from debsync.connectors.exact.oauth import (
    PROACTIVE_AGE,
    ExactOAuth,
    ReauthorizeError,
    refresh_due,
)
from debsync.connectors.exact.settings import ExactSettings
from debsync.connectors.http import HttpFactory
from debsync.errors import FatalConnectorError, RetryableConnectorError
from debsync.store import Store
from debsync.tokens import DatabaseVault, new_key

from conftest import FrozenClock
from fake_exact import FakeExact
from fake_exact_oauth import FakeExactOAuth
from fake_http import FakeServer


class Exact:
    """The fake token endpoint served on loopback, and one instance's ExactOAuth on it."""

    def __init__(self, store: Store, clock: FrozenClock, server: FakeServer, fake: FakeExactOAuth):
        self.clock = clock
        self.fake = fake
        key = new_key()
        self.vault = DatabaseVault(store.engine, "books", lambda: key)
        self.settings = ExactSettings(
            client_id="fake-client", client_secret=SecretStr("fake-secret"), base_url=server.url
        )

    def oauth(self, *, vault: Any = ..., instance: str = "books") -> ExactOAuth:
        context = ConnectorContext(
            instance,
            Path("."),
            clock=self.clock,
            http=HttpFactory(clock=self.clock),
            tokens=self.vault if vault is ... else vault,
        )
        return ExactOAuth(instance, self.settings, context)

    def authorise(self) -> None:
        asyncio.run(self.oauth().exchange_code(self.fake.code(self.settings.redirect_uri)))

    def later(self, seconds: float) -> None:
        self.clock.now += timedelta(seconds=seconds)


class _Route:
    """One loopback server for the module, answering with the current test's fake (a
    server's shutdown costs half a second)."""

    handler: Callable[[httpx.Request], httpx.Response]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        return self.handler(request)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeServer, _Route]]:
    route = _Route()
    with FakeServer(route) as server:
        yield server, route


@pytest.fixture
def exact(sqlite_store: Store, clock: FrozenClock, served: tuple[FakeServer, _Route]) -> Exact:
    server, route = served
    fake = FakeExactOAuth(clock=lambda: clock.now.timestamp())
    route.handler = fake.handle
    return Exact(sqlite_store, clock, server, fake)


def test_a_fresh_access_token_is_used_without_a_refresh(exact: Exact) -> None:
    exact.authorise()
    stored = exact.vault.load()
    assert stored is not None and stored["expires_at"] - stored["issued_at"] == 600
    exact.later(569)
    assert asyncio.run(exact.oauth().access_token()) == stored["access_token"]
    assert exact.fake.refreshes == 0 and exact.fake.exchanges == 1


def test_the_refresh_rotates_and_the_new_pair_is_saved_before_it_is_returned(
    exact: Exact,
) -> None:
    exact.authorise()
    first = exact.vault.load()
    assert first is not None
    generation = exact.vault.generation
    exact.later(570)  # the last 30 s of the 600
    token = asyncio.run(exact.oauth().access_token())
    saved = exact.vault.load()
    assert saved is not None and saved["access_token"] == token != first["access_token"]
    assert saved["refresh_token"] != first["refresh_token"]
    assert exact.vault.generation == generation + 1
    assert first["refresh_token"] in exact.fake.spent
    assert exact.fake.refreshes == 1 and exact.fake.valid(token)


class Flaky:
    """A vault whose store fails the next ``failures`` saves."""

    def __init__(self, vault: DatabaseVault, failures: int) -> None:
        self.vault, self.failures = vault, failures

    def load(self) -> dict[str, Any] | None:
        return self.vault.load()

    def lock(self) -> AbstractContextManager[None]:
        return self.vault.lock()

    def save(self, tokens: dict[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("disk I/O error")
        self.vault.save(tokens)


@pytest.mark.parametrize("failures", [2, 3])
def test_a_save_that_fails_is_tried_again_before_the_pair_is_given_up(
    exact: Exact, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    monkeypatch.setattr(oauth_module, "SAVE_PAUSE", 0.0)
    exact.authorise()
    exact.later(600)
    flaky = Flaky(exact.vault, failures)
    if failures < oauth_module.SAVE_ATTEMPTS:
        token = asyncio.run(exact.oauth(vault=flaky).access_token())
        saved = exact.vault.load()
        assert saved is not None and saved["access_token"] == token
    else:
        with pytest.raises(ReauthorizeError, match=r"could not be saved \(OSError\)"):
            asyncio.run(exact.oauth(vault=flaky).access_token())
    assert exact.fake.refreshes == 1


def test_a_too_early_refresh_is_never_sent(exact: Exact) -> None:
    """Every call in the first 570 s uses the stored token, and a 401 then waits for a later
    sync rather than earn a TooEarlyToRefreshTokens error."""
    exact.authorise()
    oauth = exact.oauth()
    stored = exact.vault.load()
    assert stored is not None
    for _ in range(57):
        assert asyncio.run(oauth.access_token()) == stored["access_token"]
        exact.later(10)
    assert exact.fake.refreshes == 0
    exact.later(-300)
    with pytest.raises(RetryableConnectorError, match="before 570 s"):
        asyncio.run(oauth.after_unauthorized(stored["access_token"]))
    assert exact.fake.refreshes == 0 and exact.fake.errors == []


def test_a_401_triggers_exactly_one_refresh(exact: Exact) -> None:
    """Two callers holding the expired token both meet a 401: one refresh, one new token."""
    exact.authorise()
    exact.later(100)
    held = asyncio.run(exact.oauth().access_token())
    exact.later(520)  # the token expired at the platform while the sync ran
    assert not exact.fake.valid(held)

    async def both() -> list[str]:
        return list(
            await asyncio.gather(
                exact.oauth().after_unauthorized(held), exact.oauth().after_unauthorized(held)
            )
        )

    first, second = asyncio.run(both())
    assert first == second != held
    assert exact.fake.valid(first)
    assert exact.fake.refreshes == 1 and exact.fake.errors == []


def test_a_401_from_the_api_is_answered_by_one_refresh_and_one_retry(
    exact: Exact, served: tuple[FakeServer, _Route]
) -> None:
    """The stored pair claims a longer life than Exact gave it (a clock or an expires_in
    that changed): the API's 401 is what tells, and one refresh mends it."""
    api = FakeExact([3001, 3002], oauth=exact.fake, clock=exact.fake.clock)
    served[1].handler = api
    exact.authorise()
    stored = exact.vault.load()
    assert stored is not None
    exact.vault.save(stored | {"expires_at": stored["issued_at"] + 3600})
    exact.later(620)
    found = asyncio.run(exact.oauth().administrations())
    assert found == [("3001", "Administratie 3001"), ("3002", "Administratie 3002")]
    unauthorized = [call for call in api.calls if call == (None, "GET /api/v1/current/Me")]
    assert len(unauthorized) == 2  # refused once, then answered
    assert exact.fake.refreshes == 1 and exact.fake.errors == []


def test_a_refresh_token_25_days_old_is_refreshed_even_with_a_live_access_token(
    exact: Exact,
) -> None:
    exact.authorise()
    stored = exact.vault.load()
    assert stored is not None
    exact.vault.save(stored | {"expires_at": stored["issued_at"] + 40 * 86400})
    exact.later(25 * 86400 - 60)
    assert asyncio.run(exact.oauth().access_token()) == stored["access_token"]
    exact.later(60)
    assert asyncio.run(exact.oauth().access_token()) != stored["access_token"]
    assert exact.fake.refreshes == 1 and stored["refresh_token"] in exact.fake.spent


def test_a_refresh_token_past_30_days_asks_for_reauthorisation_without_a_request(
    exact: Exact,
) -> None:
    exact.authorise()
    exact.later(30 * 86400)
    for _ in range(2):
        with pytest.raises(ReauthorizeError) as caught:
            asyncio.run(exact.oauth().access_token())
        assert "re-authorise with `debsync auth books`" in str(caught.value)
        assert "expired" in str(caught.value)
    assert exact.fake.errors == []


def test_expiry_at_exact_is_remembered_so_the_dead_token_is_sent_once(exact: Exact) -> None:
    """The vault does not know the grant's age (it came from elsewhere): Exact says it
    expired, and no later sync spends another error on it."""
    pair = exact.fake.issue()
    exact.later(31 * 86400)
    now = exact.clock.now.timestamp()
    tokens = {k: pair[k] for k in ("access_token", "refresh_token")}
    exact.vault.save(tokens | {"issued_at": now - 600, "expires_at": now})
    for _ in range(3):
        with pytest.raises(ReauthorizeError, match="has expired"):
            asyncio.run(exact.oauth().access_token())
    assert exact.fake.errors == ["invalid_request"]


def test_a_spent_or_revoked_refresh_token_asks_for_reauthorisation(exact: Exact) -> None:
    exact.authorise()
    exact.fake.revoke()
    exact.later(600)
    with pytest.raises(ReauthorizeError, match=r"refused \(invalid_grant\)"):
        asyncio.run(exact.oauth().access_token())
    with pytest.raises(ReauthorizeError):
        asyncio.run(exact.oauth().access_token())
    assert exact.fake.errors == ["invalid_grant"]


def test_the_old_answer_to_a_spent_token_asks_for_reauthorisation_too(
    exact: Exact, served: tuple[FakeServer, _Route]
) -> None:
    """Until 2019 Exact answered a spent refresh token 401 unauthorized_client."""

    def old_exact(request: httpx.Request) -> httpx.Response:
        response = exact.fake.handle(request)
        if response.status_code == 400 and b"invalid_grant" in response.content:
            body = {"error": "unauthorized_client", "error_description": "Old refresh token used."}
            return httpx.Response(401, json=body)
        return response

    served[1].handler = old_exact
    exact.authorise()
    exact.fake.revoke()
    exact.later(600)
    with pytest.raises(ReauthorizeError, match=r"refused \(unauthorized_client\)"):
        asyncio.run(exact.oauth().access_token())


def test_a_pair_sent_with_a_refusal_is_saved_all_the_same(
    exact: Exact, served: tuple[FakeServer, _Route]
) -> None:
    """Exact may send a new pair with a rate-limit refusal: it is the live one now."""
    sent: list[dict[str, str]] = []

    def generous(request: httpx.Request) -> httpx.Response:
        response = exact.fake.handle(request)
        if response.status_code == 400 and b"not expired" in response.content:
            sent.append(exact.fake.issue())
            return httpx.Response(400, json=json.loads(response.content) | sent[-1])
        return response

    served[1].handler = generous
    theirs = exact.fake.issue()
    with pytest.raises(RetryableConnectorError, match="TooEarlyToRefreshTokens"):
        asyncio.run(exact.oauth().adopt_refresh_token(theirs["refresh_token"]))
    saved = exact.vault.load()
    assert saved is not None and saved["refresh_token"] == sent[0]["refresh_token"]


def test_without_a_vault_or_tokens_the_error_names_the_ways_out(exact: Exact) -> None:
    with pytest.raises(ReauthorizeError) as caught:
        asyncio.run(exact.oauth(vault=None).access_token())
    message = str(caught.value)
    assert "keyring" in message and "[store] token_key" in message
    assert "debsync auth --new-key" in message and "`debsync auth books`" in message
    with pytest.raises(ReauthorizeError, match="not authorised yet"):
        asyncio.run(exact.oauth().access_token())


def test_a_refresh_token_is_adopted_by_spending_it_once(exact: Exact) -> None:
    theirs = exact.fake.issue()  # another integration's pair
    exact.later(600)
    asyncio.run(exact.oauth().adopt_refresh_token(theirs["refresh_token"] + "\n"))
    ours = exact.vault.load()
    assert ours is not None and ours["refresh_token"] != theirs["refresh_token"]
    assert theirs["refresh_token"] in exact.fake.spent
    assert exact.fake.valid(ours["access_token"])


def test_adopting_a_just_refreshed_token_is_refused_as_too_early(exact: Exact) -> None:
    theirs = exact.fake.issue()
    with pytest.raises(RetryableConnectorError, match="TooEarlyToRefreshTokens"):
        asyncio.run(exact.oauth().adopt_refresh_token(theirs["refresh_token"]))
    assert exact.vault.load() is None


def test_wrong_client_credentials_are_not_a_reauthorisation(exact: Exact) -> None:
    exact.fake.client_secret = "rotated-in-the-app-center"
    with pytest.raises(FatalConnectorError, match="invalid_client") as caught:
        exact.authorise()
    assert not isinstance(caught.value, ReauthorizeError)


def test_a_used_code_is_refused(exact: Exact) -> None:
    code = exact.fake.code(exact.settings.redirect_uri)
    asyncio.run(exact.oauth().exchange_code(code))
    with pytest.raises(ReauthorizeError, match="authorisation code was refused"):
        asyncio.run(exact.oauth().exchange_code(code))


def test_no_token_reaches_a_log_line_or_a_message(
    exact: Exact, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    exact.authorise()
    first = exact.vault.load()
    exact.later(600)
    asyncio.run(exact.oauth().access_token())
    second = exact.vault.load()
    exact.fake.revoke()
    exact.later(600)
    with pytest.raises(ReauthorizeError) as caught:
        asyncio.run(exact.oauth().access_token())
    assert first is not None and second is not None
    secrets = {first["access_token"], first["refresh_token"], second["access_token"]}
    secrets |= {second["refresh_token"], "fake-secret"}
    text = caplog.text + str(caught.value)
    assert "token pair rotated" in caplog.text
    assert [s for s in secrets if s in text] == []


def test_the_state_is_ours_and_fresh() -> None:
    clock = FrozenClock()
    settings = ExactSettings(client_id="c", client_secret=SecretStr("s"))
    oauth = ExactOAuth("books", settings, ConnectorContext("books", Path("."), clock=clock))
    state = oauth.new_state()
    assert oauth.state_ok(state)
    assert not oauth.state_ok(state[:-1] + ("0" if state[-1] != "0" else "1"))
    other = ExactOAuth(
        "books", ExactSettings(client_id="c", client_secret=SecretStr("t")), oauth.context
    )
    assert not other.state_ok(state)
    clock.now += timedelta(hours=1, seconds=1)
    assert not oauth.state_ok(state)
    url = httpx.URL(oauth.authorize_url(state))
    assert url.path == "/api/oauth2/auth" and url.params["state"] == state
    assert url.params["redirect_uri"] == settings.redirect_uri


@pytest.mark.parametrize(
    ("age", "lifetime", "due"),
    [
        (0, 600, False),
        (569, 600, False),
        (570, 600, True),
        (5000, 600, True),
        (569, 500, False),  # expired by its own account, but Exact would refuse: wait
        (PROACTIVE_AGE - 1, 40 * 86400, False),
        (PROACTIVE_AGE, 40 * 86400, True),  # a long-lived access token: refresh at 25 days
    ],
)
def test_when_a_refresh_is_due(age: float, lifetime: float, due: bool) -> None:
    tokens = {"issued_at": 1000.0, "expires_at": 1000.0 + lifetime}
    assert refresh_due(tokens, 1000.0 + age) is due
