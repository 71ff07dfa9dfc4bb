"""`debsync run` end to end: a daemon subprocess, a real SMTP server (aiosmtpd on loopback)
and a CSV export the test edits.

An invoice overdue on a Saturday is queued but not sent; on Monday at 10:00 the reminder
arrives; a payment written into the export cancels the next step before its window opens;
SIGTERM ends the daemon with exit 0 within its grace. A second daemon on the same SQLite
database is refused; SIGHUP with a broken connectors.toml keeps the daemon running.

The clock is ``DEBSYNC_NOW`` (docs/cli.md): it is read when a process starts, so each new
moment is a restart with a later value, as a daemon stopped over a weekend is.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from debsync import outbox
from debsync.cli import app
from debsync.config import load_config
from debsync.daemon import Daemon as DaemonWorker
from debsync.plugins import Plugins
from debsync.store import open_store
from debsync.store.schema import ActionState, connector_state, invoices, sync_runs

from smtp_server import SMTPTestServer

DEBSYNC = (sys.executable, "-m", "debsync")
GRACE = 5
WAIT = 60.0  # the most any step may take on a slow CI machine; no figure is asserted
HEADER = "Relatiecode;Naam;Soort;E-mail;Factuurnummer;Factuurdatum;Vervaldatum;Openstaand"
DEBTOR = "10001;Installatiebedrijf De Vries B.V.;Zakelijk;administratie@devries.example.nl"
LATER = "10002;Bakkerij Smit B.V.;Zakelijk;info@bakkerij-smit.example.nl"


def write_export(path: Path, *, paid: bool) -> None:
    rows = [
        HEADER,
        f"{DEBTOR};F2026-101;10-11-2026;10-12-2026;{'0,00' if paid else '1.250,00'}",
        f"{LATER};F2026-102;01-12-2026;31-01-2027;300,00",  # not due: keeps the book non-empty
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_config(directory: Path, server: SMTPTestServer) -> Path:
    config = directory / "connectors.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{directory / "debsync.db"}"

[http]
port = 0  # any free port: tests run side by side

[daemon]
sync_every = "2s"
shutdown_grace = "{GRACE}s"
lease = "6s"

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
from_address = "debiteuren@voorbeeld-installatie.example.nl"
""",
        encoding="utf-8",
    )
    return config


class Daemon:
    """One `debsync run` child at a given moment; its stderr kept in a file."""

    started: ClassVar[list[Daemon]] = []

    def __init__(self, config: Path, now: str, log: Path) -> None:
        self.log = log
        Daemon.started.append(self)
        with log.open("ab") as stderr:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [*DEBSYNC, "--config", str(config), "-v", "--log-format", "json", "run"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "DEBSYNC_NOW": now, "DEBSYNC_DISABLE_PLUGINS": ""},
            )

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=GRACE + 15)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, SMTPTestServer]]:
    with SMTPTestServer() as server:
        write_export(tmp_path / "open-items.csv", paid=False)
        yield write_config(tmp_path, server), server
        for daemon in Daemon.started:  # a failed test leaves none behind
            if daemon.process.poll() is None:
                daemon.process.kill()
                daemon.process.wait()
        Daemon.started.clear()


def until(condition: Callable[[], Any], what: str, daemon: Daemon | None = None) -> Any:
    """Wait for ``condition`` to hold (a daemon works in its own time); fail naming ``what``."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if daemon is not None and daemon.process.poll() is not None:
            break
        time.sleep(0.2)
    log = daemon.log.read_text(errors="replace")[-3000:] if daemon else ""
    pytest.fail(f"never saw {what}\n{log}")


def actions(config: Path) -> dict[str, Any]:
    store = open_store(f"sqlite:///{config.parent / 'debsync.db'}")
    try:
        return {row.step: row for row in outbox.rows(store)}
    finally:
        store.dispose()


def open_minor(config: Path, number: str) -> int | None:
    """What the store has left open of an invoice, in cents."""
    store = open_store(f"sqlite:///{config.parent / 'debsync.db'}")
    try:
        with store.engine.connect() as conn:
            left = conn.execute(
                sa.select(invoices.c.open_minor).where(invoices.c.number == number)
            ).scalar_one_or_none()
        return None if left is None else int(left)
    finally:
        store.dispose()


@pytest.mark.slow
def test_the_daemon_sends_inside_the_window_and_a_payment_cancels_the_next_step(
    world: tuple[Path, SMTPTestServer], tmp_path: Path
) -> None:
    config, server = world
    log = tmp_path / "daemon.log"

    # Saturday: the invoice is two days overdue; the reminder is queued, not sent.
    saturday = Daemon(config, "2026-12-12T10:00:00+01:00", log)
    reminder = until(lambda: actions(config).get("reminder"), "the reminder queued", saturday)
    assert reminder.state == ActionState.PLANNED and server.messages == []
    assert saturday.stop() == 0

    # Monday 10:00: the window is open, the reminder arrives.
    monday = Daemon(config, "2026-12-14T10:00:00+01:00", log)
    until(lambda: server.messages, "the reminder at the SMTP server", monday)
    (message,) = server.messages
    assert message.rcpt_tos == ("administratie@devries.example.nl",)

    # The daemon's one HTTP server runs alongside: health, and the web console at /.
    ports = until(  # the log holds Saturday's daemon's line too
        lambda: re.findall(r"HTTP server listening on [\d.]+:(\d+)", log.read_text())[1:],
        "the HTTP server listening",
        monday,
    )
    base = f"http://127.0.0.1:{ports[-1]}"
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert "Inloggen" in httpx.get(f"{base}/login").text
    assert "F2026-101" in message.message.get_body(("plain",)).get_content()

    # Meanwhile a second daemon on the same SQLite database is refused, clearly.
    second = subprocess.run(
        [*DEBSYNC, "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, "DEBSYNC_NOW": "2026-12-14T10:00:00+01:00"},
    )
    assert second.returncode == 1 and "already running" in second.stderr

    # SIGHUP with a broken connectors.toml: the daemon says why and keeps running.
    good = config.read_text(encoding="utf-8")
    config.write_text(good + "\n[daemon.nonsense\n", encoding="utf-8")
    monday.process.send_signal(signal.SIGHUP)
    until(lambda: "SIGHUP: the configuration stays" in log.read_text(), "the refusal", monday)
    config.write_text(good, encoding="utf-8")
    assert monday.process.poll() is None
    assert monday.stop() == 0
    assert actions(config)["reminder"].state == ActionState.SENT

    # Sunday after Christmas: the aanmaning is queued (the window is closed); the debtor pays.
    sunday = Daemon(config, "2026-12-27T10:00:00+01:00", log)
    until(lambda: actions(config).get("aanmaning"), "the aanmaning queued", sunday)
    write_export(config.parent / "open-items.csv", paid=True)
    until(lambda: open_minor(config, "F2026-101") == 0, "the payment", sunday)
    started = time.monotonic()
    assert sunday.stop() == 0
    stopped_in = time.monotonic() - started

    # Monday: the window opens, and the aanmaning is cancelled instead of sent.
    after = Daemon(config, "2026-12-28T10:00:00+01:00", log)
    aanmaning = until(
        lambda: (a := actions(config)["aanmaning"]).state == ActionState.CANCELLED and a,
        "the aanmaning cancelled",
        after,
    )
    assert aanmaning.cancel_code == "paid"
    assert after.stop() == 0
    assert len(server.messages) == 1
    print(f"SIGTERM to exit: {stopped_in:.2f} s (grace {GRACE} s)")


def test_a_failing_instance_backs_off_alone_and_status_says_why(tmp_path: Path) -> None:
    """One export is missing: that instance backs off, doubling its wait; the other keeps
    its rhythm; `debsync status` shows the reason and the backoff."""
    write_export(tmp_path / "open-items.csv", paid=False)
    config_path = tmp_path / "connectors.toml"
    config_path.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "debsync.db"}"

[http]
port = 0  # any free port: tests run side by side

[daemon]
sync_every = "1s"
jitter = 0
max_backoff = "1h"

[creditor]
name = "Voorbeeld Installatietechniek B.V."
iban = "NL91ABNA0417164300"

[connectors.books]
type = "csv"
path = "open-items.csv"

[connectors.broken]
type = "csv"
path = "missing.csv"
""",
        encoding="utf-8",
    )
    plugins = Plugins(entry_points=False)
    config = load_config(config_path, plugins)
    store = open_store(config.store_url)

    def states() -> dict[str, Any]:
        with store.engine.connect() as conn:
            return {r.instance: r for r in conn.execute(sa.select(connector_state))}

    async def work() -> None:
        daemon = DaemonWorker(config, store, plugins, reload=lambda: config, concurrency=2)
        running = asyncio.create_task(daemon.run())
        while (broken := states().get("broken")) is None or broken.failures < 3:
            await asyncio.sleep(0.1)
        daemon.stop()
        await running

    try:
        asyncio.run(work())
        found = states()
        with store.engine.connect() as conn:
            runs = Counter(
                (r.instance, r.status)
                for r in conn.execute(sa.select(sync_runs.c.instance, sync_runs.c.status))
            )
    finally:
        store.dispose()
    broken, books = found["broken"], found["books"]
    assert broken.failures == 3 and "missing.csv" in broken.last_error
    assert broken.next_sync_at - broken.last_attempt_at >= timedelta(seconds=4)  # 1 s, 2 s, 4 s
    assert books.failures == 0 and books.last_error is None and runs[("books", "ok")] >= 1
    assert timedelta(seconds=1) <= books.next_sync_at - books.last_success_at < timedelta(seconds=4)
    status = CliRunner().invoke(app, ["--config", str(config_path), "status"])
    assert status.exit_code == 1  # a failing instance
    text = " ".join(status.output.split())
    assert "backing off after 3 failure(s) in a row" in text and "missing.csv" in text
    assert "send window:" in text
