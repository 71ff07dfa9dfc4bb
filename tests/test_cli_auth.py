"""debsync auth as an operator runs it, against the Exact fake over real loopback HTTP: a new
key, the three headless ways (a code, the redirect address, a refresh token from standard
input), the browser coming back to the local listener, what reaches whom, a token that
survives a restart without a keyring, and `debsync status` asking to re-authorise while the
other instances carry on."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import keyring
import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner, Result

from debsync.cli import app
from debsync.store import open_store
from debsync.tokens import DatabaseVault, new_key
from test_config import memory_keyring, no_keyring  # noqa: F401  (fixtures)

from fake_exact import FakeExact
from fake_exact_oauth import FakeExactOAuth
from fake_http import FakeServer

KEY = new_key()


class Shifted:
    """The fake's clock: the machine's, shifted to issue a pair in the past."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Project:
    """A connectors.toml with Exact instances on the fake, and the CLI to run on it."""

    def __init__(self, tmp_path: Path, server: FakeServer, fake: FakeExact, clock: Shifted):
        self.tmp_path, self.server, self.fake, self.clock = tmp_path, server, fake, clock
        self.env = {
            "DEBSYNC_TOKEN_KEY": KEY,
            "EXACT_SECRET": fake.oauth.client_secret,
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        self.config = self.write()

    def write(self, *, redirect_uri: str = "http://127.0.0.1:1/callback", key: bool = True) -> Path:
        config = self.tmp_path / "connectors.toml"
        store_key = 'token_key = { env = "DEBSYNC_TOKEN_KEY" }' if key else ""
        instances = "".join(
            f"""
            [connectors.{name}]
            type = "exact"
            base_url = "{self.server.url}"
            client_id = "fake-client"
            client_secret = {{ env = "EXACT_SECRET" }}
            redirect_uri = "{redirect_uri}"
            """
            for name in ("books", "other")
        )
        config.write_text(
            textwrap.dedent(
                f"""
                [store]
                url = "sqlite:///{self.tmp_path / "debsync.db"}"
                {store_key}
                """
            )
            + textwrap.dedent(instances),
            encoding="utf-8",
        )
        return config

    def cli(self, *args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(
            app, ["-c", str(self.config), *args], input=stdin, env=self.env, catch_exceptions=False
        )

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI as its own process, as after a restart."""
        return subprocess.run(
            [sys.executable, "-m", "debsync", "-c", str(self.config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            timeout=120,
        )

    def vault(self, instance: str = "books") -> DatabaseVault:
        store = open_store(f"sqlite:///{self.tmp_path / 'debsync.db'}")
        return DatabaseVault(store.engine, instance, lambda: KEY)

    def old_refresh_token(self) -> str:
        """Another integration's refresh token, issued long enough ago to refresh now."""
        self.clock.offset = -1200.0
        token = self.fake.oauth.issue()["refresh_token"]
        self.clock.offset = 0.0
        return token


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    clock = Shifted()
    fake = FakeExact([3001, 3002], oauth=FakeExactOAuth(clock=clock), clock=clock)
    with FakeServer(fake) as server:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        yield Project(tmp_path, server, fake, clock)


def text(result: Result) -> str:
    """The output without the console's line wrapping."""
    return " ".join((result.stdout + result.stderr).split())


def test_new_key_prints_a_fernet_key() -> None:
    result = CliRunner().invoke(app, ["auth", "--new-key"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    Fernet(key.encode())  # a usable key
    assert "token_key" in result.stderr and key not in result.stderr
    assert CliRunner().invoke(app, ["auth", "books", "--new-key"]).exit_code == 2


@pytest.mark.usefixtures("no_keyring")
def test_without_keyring_or_key_auth_names_both_ways_out(project: Project) -> None:
    project.config = project.write(key=False)
    result = project.cli("auth", "books")
    assert result.exit_code == 2
    message = text(result)
    assert "no usable system keyring" in message and "[store] token_key" in message
    assert "debsync auth --new-key" in message


def test_a_code_is_exchanged_and_the_divisions_are_listed(project: Project) -> None:
    code = project.fake.oauth.code("http://127.0.0.1:1/callback")
    result = project.cli("auth", "books", "--code", quote(code, safe=""))  # as in the URL
    assert result.exit_code == 0, text(result)
    assert "books: authorised" in result.stdout
    assert re.search(r"reaches 2 administration\(s\):\s+3001 .*\s+3002 ", result.stdout)
    tokens = project.vault().load()
    assert tokens is not None and project.fake.oauth.valid(tokens["access_token"])
    assert code not in result.stdout + result.stderr


@pytest.mark.usefixtures("memory_keyring")
def test_without_a_key_the_keyring_keeps_the_tokens(project: Project) -> None:
    project.config = project.write(key=False)
    code = project.fake.oauth.code("http://127.0.0.1:1/callback")
    assert project.cli("auth", "books", "--code", code).exit_code == 0
    (entry,) = keyring.get_keyring().secrets  # type: ignore[attr-defined]
    assert entry[0] == "debsync-tokens" and entry[1].startswith("books@")
    assert project.vault().load() is None  # nothing in the store


def test_the_redirect_address_is_taken_when_its_state_is_ours(project: Project) -> None:
    project.config = project.write(redirect_uri="https://debsync.example.nl/callback")
    printed = project.cli("auth", "books")  # cannot listen on an https address: prints only
    assert printed.exit_code == 0 and "--redirect-url" in text(printed)
    (authorize,) = [line for line in printed.stdout.splitlines() if line.startswith("http")]
    landed = httpx.get(authorize).headers["Location"]  # the user logs in and consents
    assert landed.startswith("https://debsync.example.nl/callback?code=")
    forged = re.sub(r"state=[^&]+", "state=1.2.3", landed)
    refused = project.cli("auth", "books", "--redirect-url", forged)
    assert refused.exit_code == 2 and "no state from this debsync" in text(refused)
    result = project.cli("auth", "books", "--redirect-url", landed)
    assert result.exit_code == 0, text(result)
    assert project.fake.oauth.exchanges == 1
    denied = landed.split("?")[0] + "?error=access_denied&state=x"
    assert project.cli("auth", "books", "--redirect-url", denied).exit_code == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_browser_comes_back_to_the_listener(project: Project) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    project.config = project.write(redirect_uri=redirect)
    command = [sys.executable, "-m", "debsync", "-c", str(project.config), "auth", "books"]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **project.env},
    ) as child:
        assert child.stdout is not None
        authorize = next(line for line in child.stdout if line.startswith(project.server.url))
        landed = httpx.get(authorize.strip()).headers["Location"]
        assert landed.startswith(redirect)
        with httpx.Client() as browser:
            assert browser.get(f"{redirect}?code=stolen&state=forged").status_code == 400
            assert browser.get(redirect.replace("/callback", "/favicon.ico")).status_code == 404
            answer = browser.get(landed)
        assert answer.status_code == 200 and "debsync has the authorisation" in answer.text
        rest, errors = child.communicate(timeout=60)
    assert child.returncode == 0, rest + errors
    assert "books: authorised" in rest and "3002" in rest
    assert project.fake.oauth.exchanges == 1


def test_the_listener_gives_up_after_the_timeout(project: Project) -> None:
    project.config = project.write(redirect_uri=f"http://127.0.0.1:{free_port()}/callback")
    result = project.cli("auth", "books", "--timeout", "1")
    assert result.exit_code == 1
    assert "no answer from the browser within 1 s" in text(result)
    assert "--redirect-url" in text(result)


def test_a_token_survives_a_restart_without_a_keyring(project: Project) -> None:
    token = project.old_refresh_token()
    adopted = project.cli("auth", "books", "--refresh-token", "-", stdin=token + "\n")
    assert adopted.exit_code == 0, text(adopted)
    assert project.fake.oauth.refreshes == 1 and token in project.fake.oauth.spent
    listed = project.run("auth", "books", "--list-administrations")  # another process
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "3001" in listed.stdout and project.fake.oauth.refreshes == 1
    project.env["DEBSYNC_TOKEN_KEY"] = new_key()
    wrong = project.cli("auth", "books", "--list-administrations")
    assert wrong.exit_code == 1 and "not the key they were saved with" in text(wrong)
    assert token not in text(adopted) + listed.stdout + listed.stderr + text(wrong)


def test_status_asks_to_reauthorise_and_the_other_instances_carry_on(project: Project) -> None:
    for instance in ("books", "other"):
        token = project.old_refresh_token()
        assert project.cli("auth", instance, "--refresh-token", "-", stdin=token).exit_code == 0
    owner = project.fake.add_account(3001, "Bakkerij De Gouden Korrel B.V.", 1068)
    due = date.today() - timedelta(days=40)
    project.fake.add_receivable(
        3001, owner, 30010, amount="1210.00", invoice_date=due - timedelta(days=30), due_date=due
    )
    books = project.vault("books")
    stored = books.load()
    assert stored is not None
    month = 31 * 86400  # a month without a sync: the refresh token died
    books.save(stored | {"issued_at": time.time() - month, "expires_at": time.time() - month})
    assert project.cli("sync").exit_code == 1
    status = project.cli("status")
    assert "re-authorise with `debsync auth books`" in text(status)
    as_json = project.cli("status", "--json")
    instances = {i["instance"]: i for i in json.loads(as_json.stdout)["instances"]}
    assert "re-authorise with `debsync auth books`" in instances["books"]["last_error"]
    assert instances["other"]["last_error"] is None
    assert instances["other"]["open_invoices"] == 1


def test_connectors_without_an_oauth_flow_only_list(project: Project) -> None:
    project.config.write_text(
        project.config.read_text() + '\n[connectors.sheet]\ntype = "csv"\npath = "open-items.csv"\n'
    )
    result = project.cli("auth", "sheet")
    assert result.exit_code == 2 and "has no authorisation flow" in text(result)
    listed = project.cli("auth", "sheet", "--list-administrations")
    assert listed.exit_code == 2 and "does not list administrations" in text(listed)
