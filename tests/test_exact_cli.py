"""The Exact Online connector end to end, as a new user runs it: a connectors.toml whose
``base_url`` points at the fake over real HTTP, ``debsync auth INSTANCE --refresh-token -``,
``debsync sync``, ``debsync status --json`` and ``debsync run --once`` as subprocesses, with
one division whose daily budget is used up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from debsync.tokens import new_key

from fake_exact import FakeExact
from fake_exact_oauth import FakeExactOAuth
from fake_http import FakeServer


class Shifted:
    """The fake token endpoint's clock, set back while a pair is issued so the refresh that
    adopts it is not too early."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def write_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "connectors.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "debsync.db"}"
token_key = {{ env = "DEBSYNC_TOKEN_KEY" }}

[creditor]
name = "Voorbeeld Installatietechniek B.V."
email = "debiteuren@voorbeeld-installatie.nl"
iban = "NL91ABNA0417164300"
address = {{ lines = ["Industrieweg 12"], postcode = "3542 AD", city = "Utrecht" }}

[connectors.acme-exact]
type = "exact"
base_url = "{url}"
client_id = "fake-client"
client_secret = {{ env = "EXACT_CLIENT_SECRET" }}
divisions = "all"

[actions.outbox-files]
type = "file"
directory = "outbox"

[actions.print]
type = "letter"
directory = "letters"

[actions.calls]
type = "call"
""",
        encoding="utf-8",
    )
    return config


def test_auth_sync_status_and_run_once_end_to_end(tmp_path: Path) -> None:
    clock = Shifted()
    # 3003 has two calls left today: it is skipped until the reset, the others carry on
    fake = FakeExact([3001, 3002, 3003], oauth=FakeExactOAuth(clock=clock), budgets={3003: 2})
    due = date.today() - timedelta(days=40)
    for division in (3001, 3002, 3003):
        owner = fake.add_account(
            division, "Bakkerij De Gouden Korrel B.V.", 1068, Email="info@korrel.example.nl"
        )
        fake.add_receivable(
            division,
            owner,
            division * 10,
            amount="1210.00",
            invoice_date=due - timedelta(days=30),
            due_date=due,
        )
    clock.offset = -1200.0
    refresh_token = fake.oauth.issue()["refresh_token"]
    clock.offset = 0.0
    env = {
        **os.environ,
        "DEBSYNC_TOKEN_KEY": new_key(),
        "EXACT_CLIENT_SECRET": fake.oauth.client_secret,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "debsync", "-c", str(config), *args]
        return subprocess.run(
            command, capture_output=True, text=True, env=env, input=stdin, timeout=120
        )

    with FakeServer(fake) as server:
        config = write_config(tmp_path, server.url)
        authorised = cli("auth", "acme-exact", "--refresh-token", "-", stdin=refresh_token)
        assert authorised.returncode == 0, authorised.stdout + authorised.stderr
        synced = cli("sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        status = cli("status", "--json")
        assert status.returncode == 0, status.stderr
        (instance,) = json.loads(status.stdout)["instances"]
        assert (instance["instance"], instance["open_invoices"]) == ("acme-exact", 2)
        assert instance["last_error"] is None
        (reject,) = instance["rejects"]
        assert reject["ref"] == "division 3003" and "daily API budget" in reject["reason"]
        fake.calls.clear()
        ran = cli("run", "--once")  # syncs again, incrementally, then plans and acts
        assert ran.returncode == 0, ran.stdout + ran.stderr
    synced_calls = [call for _, call in fake.calls if "/sync/" in call]
    assert len(synced_calls) == 4 * 2  # incremental: four calls per division, none for 3003
    assert not [call for division, call in fake.calls if division == 3003]
    everything = authorised.stdout + authorised.stderr + synced.stdout + synced.stderr
    assert refresh_token not in everything + status.stdout + ran.stdout + ran.stderr
