"""Never twice: a daemon killed at random moments while sending 1,000 e-mails delivers each one
exactly once, or leaves it for a person in `debsync outbox review`; none arrives twice.

A child process runs `debsync act` against a real SMTP server (aiosmtpd on loopback) and is
killed with SIGKILL at random moments, twenty times, restarting each time; then it runs to the
end. The server counts Message-IDs, which debsync derives from each action's idempotency key.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from debsync import outbox
from debsync.store import open_store
from debsync.store.schema import ActionState

from smtp_server import SMTPTestServer

ACTIONS = 1000
KILLS = 20
SENDER_DOMAIN = "voorbeeld-installatie.example.nl"


def write_book(directory: Path, server: SMTPTestServer) -> Path:
    """A thousand debtors with one overdue invoice each, and a config that mails them."""
    today = date.today()
    rows = ["Relatiecode;Naam;Soort;E-mail;Factuurnummer;Factuurdatum;Vervaldatum;Openstaand"]
    for n in range(ACTIONS):
        due = today - timedelta(days=3 + n % 20)
        rows.append(
            f"D{n:05d};Klant {n} B.V.;Zakelijk;debiteur{n}@example.nl;F{n:05d};"
            f"{(due - timedelta(days=30)):%d-%m-%Y};{due:%d-%m-%Y};{100 + n},00"
        )
    (directory / "open-items.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = directory / "connectors.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{directory / "debsync.db"}"

[outbox]
lease_seconds = 5
batch_size = 50

[creditor]
name = "Voorbeeld Installatietechniek B.V."
iban = "NL91ABNA0417164300"

[connectors.books]
type = "csv"
path = "open-items.csv"

[actions.mail]
type = "email"
host = "{server.host}"
port = {server.port}
security = "none"
allow_insecure = true
from_address = "debiteuren@{SENDER_DOMAIN}"
""",
        encoding="utf-8",
    )
    return config


def debsync(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "debsync", "--config", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DEBSYNC_DISABLE_PLUGINS": ""},
    )


@pytest.mark.slow
def test_killed_at_random_moments_nothing_is_sent_twice(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    with SMTPTestServer() as server:
        config = write_book(tmp_path, server)
        assert debsync(config, "sync").wait(timeout=120) == 0

        kills = 0
        while kills < KILLS:
            before = len(server.messages)
            child = debsync(config, "act")
            # Kill mid-send: after a random number of deliveries, then a random fraction of
            # one message's round trip later, so kills land at every point of the cycle
            # (rendering, marked sending, in SMTP, delivered but not yet recorded).
            wanted = before + rng.randint(1, 40)
            while len(server.messages) < wanted and child.poll() is None:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.02))
            if child.poll() is not None:  # finished before the kill: nothing left to send
                break
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            kills += 1
        time.sleep(6)  # let the last leases run out, so the dead workers' rows are in doubt
        for _ in range(3):  # finish: what is due is sent; what was being sent is in doubt
            assert debsync(config, "act").wait(timeout=300) in (0, 1)

        delivered = collections.Counter(m.message_id for m in server.messages)

    store = open_store(f"sqlite:///{tmp_path / 'debsync.db'}")
    rows = outbox.rows(store)
    store.dispose()
    states = collections.Counter(r.state for r in rows)
    assert len(rows) == ACTIONS and set(states) <= {ActionState.SENT, ActionState.IN_DOUBT}, states
    assert kills == KILLS, f"the children finished too soon to be killed ({kills} kills)"
    twice = {mid: n for mid, n in delivered.items() if n > 1}
    assert not twice, f"delivered more than once: {twice}"
    for row in rows:
        count = delivered.get(f"<ds.{row.key}@{SENDER_DOMAIN}>", 0)
        if row.state == ActionState.SENT:
            assert count == 1, f"action {row.key} is sent but arrived {count} times"
        else:  # in doubt: arrived once or never, and waits in `debsync outbox review`
            assert count in (0, 1)
    # the kills did land mid-send: some actions were left in doubt (and wait for review)
    assert states[ActionState.IN_DOUBT] >= 1, states
