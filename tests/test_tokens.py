"""The token vaults: encrypted in the store (SQLite and PostgreSQL) or in the keyring, which
one an instance gets, the token key and its errors; and, with real processes, that two
processes refreshing at once spend one refresh token and that a kill around the token answer
loses what it can lose and nothing more."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from debsync.config import Config, load_config
from debsync.connectors.base import ConnectorContext
from debsync.connectors.exact.oauth import ExactOAuth, ReauthorizeError
from debsync.connectors.exact.settings import ExactSettings
from debsync.connectors.http import HttpFactory
from debsync.errors import ConfigError
from debsync.plugins import Plugins
from debsync.store import Store, open_store
from debsync.store.schema import tokens
from debsync.tokens import (
    DatabaseVault,
    KeyringVault,
    TokenStoreError,
    new_key,
    read_token_key,
    vault_for,
)
from test_config import memory_keyring, no_keyring  # noqa: F401  (fixtures)

from conftest import FrozenClock
from fake_exact_oauth import FakeExactOAuth
from fake_http import FakeServer

KEY = new_key()
PAIR = {"access_token": "AAEAA-access", "refresh_token": "Gcp7!IAAAA-refresh"}


def vault(store: Store, key: str = KEY) -> DatabaseVault:
    return DatabaseVault(store.engine, "books", lambda: key)


def config(tmp_path: Path, token_key: dict[str, str] | None) -> Config:
    return Config(path=tmp_path / "connectors.toml", store_url="", token_key=token_key)


def test_the_database_vault_keeps_the_tokens_encrypted(store: Store) -> None:
    first = vault(store)
    assert first.load() is None
    first.save(PAIR | {"issued_at": 1.0})
    first.save(PAIR | {"issued_at": 2.0})
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(tokens)).one()
    assert row.instance == "books" and row.generation == 2
    assert b"AAEAA" not in row.ciphertext and b"refresh" not in row.ciphertext
    again = vault(store)  # another process, or after a restart
    assert again.load() == PAIR | {"issued_at": 2.0} and again.generation == 2


def test_another_key_gives_a_clear_error_without_the_ciphertext(store: Store) -> None:
    vault(store).save(PAIR)
    with store.engine.connect() as conn:
        ciphertext = conn.execute(sa.select(tokens.c.ciphertext)).scalar_one()
    with pytest.raises(TokenStoreError) as caught:
        vault(store, new_key()).load()
    message = str(caught.value)
    assert "not the key they were saved with" in message
    assert "`debsync auth books`" in message
    assert ciphertext.decode() not in message and "AAEAA" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_key_that_is_no_fernet_key_says_how_to_make_one(store: Store) -> None:
    with pytest.raises(TokenStoreError, match="debsync auth --new-key"):
        vault(store, "hunter2").save(PAIR)


def test_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBSYNC_TOKEN_KEY", KEY)
    assert read_token_key({"env": "DEBSYNC_TOKEN_KEY"}) == KEY
    monkeypatch.delenv("DEBSYNC_TOKEN_KEY")
    with pytest.raises(TokenStoreError, match=r"\[store\] token_key: environment variable"):
        read_token_key({"env": "DEBSYNC_TOKEN_KEY"})


def test_a_key_file_must_be_the_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "token.key"
    path.write_text(KEY + "\n")
    path.chmod(0o644)
    with pytest.raises(TokenStoreError, match=r"other users \(mode 0644\).*chmod 600"):
        read_token_key({"file": str(path)})
    path.chmod(0o600)
    assert read_token_key({"file": str(path)}) == KEY
    with pytest.raises(TokenStoreError, match="cannot be read"):
        read_token_key({"file": str(tmp_path / "missing.key")})


def test_the_key_file_is_relative_to_connectors_toml(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text('[store]\ntoken_key = { file = "secrets/token.key" }\n')
    loaded = load_config(path, Plugins(entry_points=False))
    assert loaded.token_key == {"file": str(tmp_path / "secrets" / "token.key")}
    path.write_text('[store]\ntoken_key = "' + KEY + '"\n')
    with pytest.raises(ConfigError, match=r"\[store.token_key\]"):
        load_config(path, Plugins(entry_points=False))
    path.write_text('[store]\ntoken_key = { keyring = "debsync/key" }\n')
    with pytest.raises(
        ConfigError, match=re.escape('must be { env = "VAR" } or { file = "path" }')
    ):
        load_config(path, Plugins(entry_points=False))


@pytest.mark.usefixtures("memory_keyring")
def test_a_configured_key_chooses_the_store_over_the_keyring(
    tmp_path: Path, sqlite_store: Store
) -> None:
    chosen = vault_for(config(tmp_path, {"env": "X"}), sqlite_store, "books")
    assert isinstance(chosen, DatabaseVault)
    assert isinstance(vault_for(config(tmp_path, None), sqlite_store, "books"), KeyringVault)


@pytest.mark.usefixtures("no_keyring")
def test_without_keyring_or_key_there_is_no_vault(tmp_path: Path, sqlite_store: Store) -> None:
    assert vault_for(config(tmp_path, None), sqlite_store, "books") is None
    assert isinstance(vault_for(config(tmp_path, {"env": "X"}), sqlite_store, "b"), DatabaseVault)


@pytest.mark.usefixtures("memory_keyring")
def test_the_keyring_vault_keeps_each_stores_instance_apart(tmp_path: Path) -> None:
    one = open_store(f"sqlite:///{tmp_path / 'one.db'}")
    two = open_store(f"sqlite:///{tmp_path / 'two.db'}")
    try:
        KeyringVault(one.engine, "books").save(PAIR)
        assert KeyringVault(one.engine, "books").load() == PAIR
        assert KeyringVault(two.engine, "books").load() is None
        assert KeyringVault(one.engine, "other").load() is None
        backend = keyring.get_keyring()
        assert {service for service, _ in backend.secrets} == {"debsync-tokens"}  # type: ignore[attr-defined]
    finally:
        one.dispose()
        two.dispose()


# -- real processes ----------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from pydantic import SecretStr
    from debsync.connectors.base import ConnectorContext
    from debsync.connectors.exact.oauth import ExactOAuth
    from debsync.connectors.exact.settings import ExactSettings
    from debsync.connectors.http import HttpFactory
    from debsync.store import open_store
    from debsync.tokens import DatabaseVault

    url, base, now, start, crash = sys.argv[1:]
    moment = datetime.fromtimestamp(float(now), UTC)
    clock = lambda: moment
    vault = DatabaseVault(open_store(url).engine, "books", lambda: os.environ["KEY"])
    save = vault.save
    def dying(tokens):
        if crash == "after-save":
            save(tokens)
        os.kill(os.getpid(), signal.SIGKILL)
    if crash != "none":
        vault.save = dying
    Path(f"{start}.{os.getpid()}").touch()  # ready: imported and connected
    while not os.path.exists(start):  # all children start refreshing together
        time.sleep(0.005)
    settings = ExactSettings(
        client_id="fake-client", client_secret=SecretStr("fake-secret"), base_url=base
    )
    context = ConnectorContext(
        "books", Path("."), clock=clock, http=HttpFactory(clock=clock), tokens=vault
    )
    print(asyncio.run(ExactOAuth("books", settings, context).access_token()))
    """
)


class Refreshing:
    """A vault whose access token is due, the fake that issued it, and child processes."""

    def __init__(self, store: Store, tmp_path: Path, server: FakeServer, fake: FakeExactOAuth):
        self.store, self.tmp_path, self.server, self.fake = store, tmp_path, server, fake
        self.vault = vault(store)
        self.now = fake.clock() + 600
        pair = fake.issue()
        self.seeded = {k: pair[k] for k in ("access_token", "refresh_token")}
        issued = fake.clock()
        self.vault.save(self.seeded | {"issued_at": issued, "expires_at": issued + 600})

    def start(self, n: int, crash: str = "none") -> list[subprocess.Popen[str]]:
        url = self.store.engine.url.render_as_string(hide_password=False)
        go = self.tmp_path / f"go-{crash}"
        argv = [sys.executable, "-c", CHILD, url, self.server.url, str(self.now), str(go), crash]
        env = {**os.environ, "KEY": KEY}
        children = [
            subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(n)
        ]
        ready = [Path(f"{go}.{child.pid}") for child in children]
        while not all(path.exists() for path in ready):
            if any(child.poll() is not None for child in children):
                break  # a child that died early fails the test's return-code check
            time.sleep(0.01)
        go.touch()
        return children

    def oauth(self) -> ExactOAuth:
        """This process's ExactOAuth on the vault, as a restarted debsync would have it."""
        clock = FrozenClock(datetime.fromtimestamp(self.now, UTC))
        settings = ExactSettings(
            client_id="fake-client",
            client_secret=SecretStr("fake-secret"),
            base_url=self.server.url,
        )
        context = ConnectorContext(
            "books", Path("."), clock=clock, http=HttpFactory(clock=clock), tokens=vault(self.store)
        )
        return ExactOAuth("books", settings, context)


@pytest.fixture
def refreshing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Refreshing]:
    """On both backends where the test asks for ``store``, else on SQLite."""
    name = "store" if "store" in request.fixturenames else "sqlite_store"
    store: Store = request.getfixturevalue(name)
    clock = FrozenClock()
    fake = FakeExactOAuth(clock=lambda: clock.now.timestamp())
    with FakeServer(fake.handle) as server:
        state = Refreshing(store, tmp_path, server, fake)
        clock.now += timedelta(seconds=600)
        yield state


@pytest.mark.usefixtures("store")
def test_two_processes_refreshing_at_once_spend_one_refresh_token(
    refreshing: Refreshing,
) -> None:
    refreshing.fake.delay = 0.3  # both have read the due token before the first answer
    children = refreshing.start(2)
    outputs = [child.communicate(timeout=60)[0].strip() for child in children]
    assert [child.returncode for child in children] == [0, 0]
    assert outputs[0] == outputs[1] != refreshing.seeded["access_token"]
    assert refreshing.fake.refreshes == 1 and refreshing.fake.errors == []
    assert refreshing.fake.valid(outputs[0])
    saved = refreshing.vault.load()
    assert saved is not None and saved["access_token"] == outputs[0]


def test_a_kill_right_after_the_save_loses_nothing(refreshing: Refreshing) -> None:
    (child,) = refreshing.start(1, crash="after-save")
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    saved = refreshing.vault.load()
    assert saved is not None and saved["refresh_token"] != refreshing.seeded["refresh_token"]
    assert refreshing.fake.refreshes == 1
    token = asyncio.run(refreshing.oauth().access_token())  # the restart: no second refresh
    assert token == saved["access_token"]
    assert refreshing.fake.refreshes == 1 and refreshing.fake.valid(saved["access_token"])


def test_a_kill_between_the_answer_and_the_save_leaves_a_spent_token(
    refreshing: Refreshing,
) -> None:
    """The one window no design closes: Exact has spent the old refresh token and the new
    pair died with the process. The next sync is told to re-authorise; nothing else breaks."""
    (child,) = refreshing.start(1, crash="before-save")
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert refreshing.vault.load() == refreshing.seeded | {
        "issued_at": refreshing.now - 600,
        "expires_at": refreshing.now,
    }
    assert refreshing.seeded["refresh_token"] in refreshing.fake.spent
    with pytest.raises(ReauthorizeError, match="re-authorise with `debsync auth books`"):
        asyncio.run(refreshing.oauth().access_token())
    saved = refreshing.vault.load()
    assert saved is not None and "invalid_grant" in saved["dead"]
