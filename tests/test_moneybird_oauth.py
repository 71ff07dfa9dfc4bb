"""Moneybird through OAuth2 with ``debsync auth``: the code exchanged through the CLI, syncs
with the OAuth token, one refresh after a 401, a revoked grant in ``debsync status`` while
another instance syncs, the tokens across a restart without a keyring, and the config error
for both or neither credential. The fake serves the API and the token endpoint on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from debsync.cli import app
from debsync.connectors.base import ConnectorContext
from debsync.connectors.moneybird.oauth import MoneybirdOAuth
from debsync.connectors.moneybird.settings import OOB, MoneybirdSettings
from debsync.store import open_store
from debsync.tokens import DatabaseVault, new_key

from fake_http import FakeServer
from fake_moneybird import FakeMoneybird

KEY = new_key()


class Project:
    """A connectors.toml with an OAuth instance (books) and a personal-token one (shop)."""

    def __init__(self, tmp_path: Path, server: FakeServer, fake: FakeMoneybird) -> None:
        self.tmp_path, self.server, self.fake = tmp_path, server, fake
        self.env = {
            "DEBSYNC_TOKEN_KEY": KEY,
            "MB_SECRET": fake.oauth.client_secret,
            "MB_TOKEN": fake.token,
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        self.config = self.write()

    def write(self, books: str | None = None) -> Path:
        config = self.tmp_path / "connectors.toml"
        credentials = books or 'client_id = "mb-client"\nclient_secret = { env = "MB_SECRET" }'
        common = f'type = "moneybird"\nadministration_id = "{self.fake.administration_id}"\n'
        common += f'base_url = "{self.server.url}/api/v2"\n'
        config.write_text(
            textwrap.dedent(
                f"""\
                [store]
                url = "sqlite:///{self.tmp_path / "debsync.db"}"
                token_key = {{ env = "DEBSYNC_TOKEN_KEY" }}
                """
            )
            + f"\n[connectors.books]\n{common}{credentials}\n"
            + f'\n[connectors.shop]\n{common}token = {{ env = "MB_TOKEN" }}\n',
            encoding="utf-8",
        )
        return config

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(
            app, ["-c", str(self.config), *args], env=self.env, catch_exceptions=False
        )

    def authorise(self) -> Result:
        code = self.fake.oauth.code(OOB)
        return self.cli("auth", "books", "--code", quote(code, safe=""))

    def vault(self) -> DatabaseVault:
        store = open_store(f"sqlite:///{self.tmp_path / 'debsync.db'}")
        return DatabaseVault(store.engine, "books", lambda: KEY)

    def token_calls(self) -> int:
        return self.fake.calls.count("POST /oauth/token")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    fake = FakeMoneybird()
    contact = fake.add_contact(company_name="Bakkerij De Gouden Korrel B.V.", email="i@k.nl")
    fake.add_invoice(
        contact["id"], "2026-0101", total="121.00", invoice_date="2026-09-01", due_date="2026-10-01"
    )
    with FakeServer(fake) as server:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        yield Project(tmp_path, server, fake)


def text(result: Result) -> str:
    return " ".join((result.stdout + result.stderr).split())


def instances(project: Project) -> dict[str, dict[str, object]]:
    listed = json.loads(project.cli("status", "--json").stdout)["instances"]
    return {str(i["instance"]): i for i in listed}


def test_the_authorize_url_asks_for_the_code_with_the_scopes() -> None:
    settings = MoneybirdSettings(
        administration_id="1", client_id="mb-client", client_secret=SecretStr("s")
    )
    oauth = MoneybirdOAuth("books", settings, ConnectorContext("books", Path(".")))
    url = urlsplit(oauth.authorize_url(oauth.new_state()))
    assert (url.scheme, url.netloc, url.path) == ("https", "moneybird.com", "/oauth/authorize")
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    assert query["client_id"] == "mb-client" and query["redirect_uri"] == OOB
    assert query["response_type"] == "code" and query["scope"] == "sales_invoices settings"
    assert oauth.state_ok(query["state"]) and oauth.token_url == "https://moneybird.com/oauth/token"


def test_a_code_is_exchanged_through_the_cli_and_the_administrations_listed(
    project: Project,
) -> None:
    code = project.fake.oauth.code(OOB)
    result = project.cli("auth", "books", "--code", quote(code, safe=""))
    assert result.exit_code == 0, text(result)
    assert "books: authorised" in result.stdout
    assert f"{project.fake.administration_id} Voorbeeld B.V." in text(result)
    tokens = project.vault().load()
    assert tokens is not None and project.fake.oauth.valid(tokens["access_token"])
    assert tokens["expires_at"] is None  # Moneybird's tokens do not expire
    assert code not in result.stdout + result.stderr
    assert tokens["access_token"] not in text(result)


def test_the_oauth_token_syncs_and_a_401_refreshes_once(project: Project) -> None:
    assert project.authorise().exit_code == 0
    first = project.vault().load()
    assert first is not None
    synced = project.cli("sync", "books")
    assert synced.exit_code == 0, text(synced)
    assert project.fake.oauth.refreshes == 0 and instances(project)["books"]["open_invoices"] == 1
    project.fake.oauth.expire_access()
    again = project.cli("sync", "books")
    assert again.exit_code == 0, text(again)
    assert project.fake.oauth.refreshes == 1
    now = project.vault().load()
    assert now is not None and now["access_token"] != first["access_token"]
    assert now["refresh_token"] == first["refresh_token"]  # Moneybird's answer keeps it
    assert project.fake.oauth.valid(now["access_token"])
    assert instances(project)["books"]["last_error"] is None


def test_a_revoked_grant_asks_to_reauthorise_while_the_other_instance_syncs(
    project: Project,
) -> None:
    assert project.authorise().exit_code == 0
    project.fake.oauth.revoke()
    assert project.cli("sync").exit_code == 1
    assert project.token_calls() == 2  # the code, then one refresh refused
    status = project.cli("status")
    assert "re-authorise with `debsync auth books`" in text(status)
    found = instances(project)
    assert "re-authorise with `debsync auth books`" in str(found["books"]["last_error"])
    assert found["shop"]["last_error"] is None and found["shop"]["open_invoices"] == 1
    assert project.cli("sync", "books").exit_code == 1
    assert project.token_calls() == 2  # the dead grant is not sent again
    assert project.authorise().exit_code == 0  # the way out
    assert project.cli("sync", "books").exit_code == 0


def test_the_tokens_survive_a_restart_without_a_keyring(project: Project) -> None:
    assert project.authorise().exit_code == 0
    command = ["-m", "debsync", "-c", str(project.config), "auth", "books"]
    listed = subprocess.run(
        [sys.executable, *command, "--list-administrations"],
        capture_output=True,
        text=True,
        env={**os.environ, **project.env},
        timeout=120,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert project.fake.administration_id in listed.stdout and project.token_calls() == 1


def test_a_personal_token_instance_lists_but_has_nothing_to_authorise(project: Project) -> None:
    result = project.cli("auth", "shop")
    assert result.exit_code == 2 and "has no authorisation flow" in text(result)
    assert project.cli("auth", "shop", "--code", "x").exit_code == 2
    listed = project.cli("auth", "shop", "--list-administrations")
    assert listed.exit_code == 0 and project.fake.administration_id in listed.stdout


@pytest.mark.parametrize(
    ("books", "says"),
    [
        ('token = { env = "MB_TOKEN" }\nclient_id = "mb-client"', "not both"),
        ('client_id = "mb-client"', "client_id and client_secret"),
        ("", "set token"),
    ],
)
def test_both_or_neither_credential_is_a_located_config_error(
    project: Project, books: str, says: str
) -> None:
    project.config = project.write(books or "# no credentials")
    result = project.cli("status")
    assert result.exit_code == 2
    message = text(result)
    assert says in message and "connectors.books" in message and "connectors.toml" in message
