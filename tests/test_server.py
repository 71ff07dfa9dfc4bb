"""The daemon's HTTP server over a real loopback socket: health, readiness as the clock moves,
metrics read with prometheus-client's own parser after a real CSV sync and a sent action, a
Moneybird webhook applied through it, bodies capped, and logs that name ids only."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import respx
from prometheus_client.parser import text_string_to_metric_families

from debsync.config import ActionInstance, Config, ConnectorInstance, CreditorSettings
from debsync.connectors.csv import CsvConnector, CsvSettings
from debsync.outbox.executor import Dispatcher
from debsync.plugins import Plugins
from debsync.server import ServerState, build_app
from debsync.service_config import HttpSettings
from debsync.store import Store
from served import Running
from test_moneybird_webhooks import NOW, SECRET, Books, seeded

from books import POLICY, START
from conftest import FrozenClock
from csv_helpers import COLUMNS, write
from csv_helpers import sync as sync_csv
from fake_moneybird import FakeMoneybird
from fakes import RecordingAction, RecordingSettings

NAME, EMAIL = "Bakkerij De Gouden Korrel B.V.", "info@goudenkorrel.nl"


def row(debtor: str, name: str, email: str, number: str, due: str, amount: str) -> list[str]:
    """One line of an open-items export, in the order of ``COLUMNS``."""
    contact = [debtor, name, "zakelijk", email, "", "Kerkstraat 1", "1234 AB", "Utrecht", "", "nl"]
    return [*contact, number, "01-09-2026", due, amount, amount, "EUR", ""]


ROWS = [
    list(COLUMNS),
    row("D1", NAME, EMAIL, "F1", "01-10-2026", "121,00"),
    row("D1", NAME, EMAIL, "F2", "01-12-2026", "50,00"),
    row("D2", "Jansen Installatie B.V.", "jansen@example.nl", "F3", "geen datum", "10,00"),
]
"""One invoice overdue on START, one not yet due, one rejected for its due date."""


class CsvBook:
    """A CSV export synced by the real engine, a recording e-mail action, and the app."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        self.store, self.clock = store, FrozenClock(START)
        self.path = write(tmp_path / "openstaand.csv", ROWS)
        settings = CsvSettings.model_validate({"path": self.path.name})
        self.config = Config(
            path=tmp_path / "connectors.toml",
            store_url="",
            creditor=CreditorSettings(name="Voorbeeld B.V.", iban="NL91ABNA0417164300"),
            policies={"default": POLICY},
            connectors={"books": ConnectorInstance("books", "csv", CsvConnector, settings)},
            actions={
                "mail": ActionInstance(
                    "mail", RecordingAction.type_name, RecordingAction, RecordingSettings()
                )
            },
            http=HttpSettings(max_sync_age=timedelta(hours=1), max_body=2048),
        )
        self.plugins = Plugins(entry_points=False)
        self.state = ServerState()

    def sync(self) -> None:
        result = sync_csv(self.store, self.clock, self.path)
        assert result.ok, result.error

    def act(self) -> None:
        dispatcher = Dispatcher(self.config, self.store, self.plugins, clock=self.clock)
        assert asyncio.run(dispatcher.act()).outcomes == {"sent": 1}


@pytest.fixture
def book(store: Store, tmp_path: Path) -> CsvBook:
    RecordingAction.sent.clear()
    return CsvBook(store, tmp_path)


def running(config: Config, store: Store, clock: Any, state: ServerState) -> Iterator[Running]:
    plugins = Plugins(entry_points=False)
    served = Running(build_app(config, store, plugins, clock=clock, state=state))
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def server(book: CsvBook) -> Iterator[Running]:
    yield from running(book.config, book.store, book.clock, book.state)


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(server: Running) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics`` by name and labels, read by prometheus-client's parser."""
    status, headers, body = get(f"{server.url}/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# -- health and readiness ----------------------------------------------------------------------


def test_healthz_answers_with_the_security_headers(server: Running) -> None:
    status, headers, body = get(f"{server.url}/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    status, headers, _ = get(f"{server.url}/no-such-page")
    assert status == 404 and headers["x-content-type-options"] == "nosniff"


def test_the_daemons_server_mounts_the_console_with_one_set_of_headers(book: CsvBook) -> None:
    """The console sets its own policy; the server adds only what a response lacks, so no
    header comes twice with two values."""
    from debsync.cli.run import http_app

    app = http_app(book.config, book.store, Plugins(entry_points=False), book.state, "http://x")
    served = Running(app)
    try:
        with urllib.request.urlopen(f"{served.url}/login", timeout=10) as response:
            page, headers = response.read(), response.headers
        _, health, _ = get(f"{served.url}/healthz")
    finally:
        served.close()
    assert b"<form" in page
    for name in ("content-security-policy", "referrer-policy", "x-content-type-options"):
        assert len(headers.get_all(name) or []) == 1, name
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "same-origin"
    assert health["referrer-policy"] == "no-referrer"


def test_work_beside_the_server_starts_with_it_and_ends_before_it_returns() -> None:
    """``serve(beside=...)``: the console's plan is kept warm while the server runs, told
    when it stops, and awaited, so nothing runs on against a disposed store."""
    from starlette.applications import Starlette

    seen: list[str] = []

    async def work(ended: asyncio.Event) -> None:
        seen.append("started")
        await ended.wait()
        seen.append("ended")

    served = Running(Starlette(), beside=[work])
    status, _, _ = get(f"{served.url}/")  # the server answers while the work runs
    assert status == 404
    assert seen == ["started"]
    served.close()
    assert seen == ["started", "ended"]


def test_readyz_follows_the_age_of_the_last_sync(book: CsvBook, server: Running) -> None:
    status, _, body = get(f"{server.url}/readyz")
    assert status == 503 and json.loads(body)["stale"] == ["books"]  # never synced
    book.sync()
    assert get(f"{server.url}/readyz")[:1] == (200,)
    book.clock.now += timedelta(minutes=59)
    assert get(f"{server.url}/readyz")[0] == 200
    book.clock.now += timedelta(minutes=2)  # 61 minutes: older than max_sync_age
    status, _, body = get(f"{server.url}/readyz")
    assert status == 503
    assert json.loads(body) == {"ready": False, "reason": "sync too old", "stale": ["books"]}
    book.sync()
    assert get(f"{server.url}/readyz")[0] == 200
    book.state.ready = False  # the daemon is stopping
    assert get(f"{server.url}/readyz")[0] == 503


# -- metrics -------------------------------------------------------------------------------------


def test_metrics_after_a_sync_and_a_sent_action(book: CsvBook, server: Running) -> None:
    before = scrape(server)
    book.sync()
    book.act()
    book.clock.now += timedelta(minutes=5)
    book.state.backoff["books"] = "auth"
    after = scrape(server)

    books = {"connector_instance": "books"}
    eur = {**books, "currency": "EUR"}
    assert sample(after, "debsync_open_invoices", **eur) == 2
    assert sample(after, "debsync_open_amount", **eur) == 171.0
    assert sample(after, "debsync_overdue_amount", **eur) == 121.0
    assert sample(after, "debsync_last_sync_age_seconds", **books) == 300.0
    assert sample(after, "debsync_sync_runs_total", **books, status="ok") == 1
    assert sample(after, "debsync_sync_records_total", **books, outcome="seen") == 2
    assert sample(after, "debsync_sync_records_total", **books, outcome="rejected") == 1
    assert sample(after, "debsync_sync_records_total", **books, outcome="written") > 0
    assert sample(after, "debsync_sync_duration_seconds_count", status="ok") == 1
    assert sample(after, "debsync_sync_duration_seconds_bucket", status="ok", le="+Inf") == 1
    assert sample(after, "debsync_outbox_backlog", state="planned") == 0
    assert ("debsync_outbox_backlog", frozenset({("state", "dead")})) in after
    assert ("debsync_outbox_backlog", frozenset({("state", "in_doubt")})) in after
    assert sample(after, "debsync_instance_backoff", **books, reason="auth") == 1
    sent = {"channel": "email", "state": "sent"}
    assert (
        sample(after, "debsync_actions_total", **sent)
        - sample(before, "debsync_actions_total", **sent)
        == 1
    )
    # scraped again, nothing new: the sync is not counted twice
    assert sample(scrape(server), "debsync_sync_runs_total", **books, status="ok") == 1


# -- bodies --------------------------------------------------------------------------------------


def test_a_webhook_body_beyond_max_body_is_refused(server: Running) -> None:
    status, body = post(f"{server.url}/webhooks/books", b"x" * 4096)
    assert (status, body) == (413, b"body too large\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /webhooks/books HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"400\r\n" + b"y" * 1024 + b"\r\n" for _ in range(3))
        )  # no length said: cut off once past the limit, the rest never sent
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_webhook_for_an_instance_without_webhooks_is_refused(server: Running) -> None:
    assert post(f"{server.url}/webhooks/books", b"{}") == (401, b"refused\n")
    assert post(f"{server.url}/webhooks/nope", b"{}") == (401, b"refused\n")


# -- a Moneybird webhook through the server ----------------------------------------------------


@pytest.fixture
def fake(respx_mock: respx.MockRouter) -> FakeMoneybird:
    fake = FakeMoneybird(clock=lambda: NOW.timestamp())
    respx_mock.route(host="moneybird.test").mock(side_effect=fake)
    return fake


@pytest.fixture
def moneybird(fake: FakeMoneybird, store: Store, tmp_path: Path) -> Iterator[tuple[Books, Running]]:
    books = Books(fake, store, tmp_path)
    books.config = replace(books.config, http=HttpSettings(max_body=64 * 1024))
    for served in running(books.config, store, books.clock, ServerState()):
        yield books, served


def test_a_moneybird_payment_arrives_by_webhook_and_the_logs_name_no_one(
    moneybird: tuple[Books, Running], caplog: pytest.LogCaptureFixture
) -> None:
    books, server = moneybird
    seeded(books.fake)
    books.sync()
    calls = sample(scrape(server), "debsync_api_calls_total", connector="moneybird")
    payment = books.fake.pay("2026-0001", Decimal("121.00"))
    headers, body = books.fake.delivery(
        "payment_registered", payment, entity_type="Payment", secrets=[SECRET], key="pay-1"
    )
    caplog.set_level(logging.DEBUG)
    url = f"{server.url}/webhooks/mb?token=query-text-stays-out"

    assert post(url, body, headers) == (200, b"applied\n")
    assert post(url, body, headers) == (200, b"duplicate\n")  # Moneybird delivers again
    forged = {**headers, "Moneybird-Signature": headers["Moneybird-Signature"][:-4] + "0000"}
    assert post(url, body, forged) == (401, b"refused\n")

    assert books.invoice("2026-0001").state == "closed"
    assert books.planned() == {"2026-0002"}
    after = scrape(server)
    assert sample(after, "debsync_api_calls_total", connector="moneybird") == calls + 1
    assert "POST /webhooks/mb 200" in caplog.text and "POST /webhooks/mb 401" in caplog.text
    for private in ("Bakkerij De Gouden Korrel", "i@korrel.nl", "query-text-stays-out", SECRET):
        assert private not in caplog.text, private


# -- debsync serve -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_debsync_serve_listens_on_the_configured_port_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    port = free_port()
    write(tmp_path / "openstaand.csv", ROWS)
    (tmp_path / "connectors.toml").write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "debsync.db"}"

[creditor]
name = "Voorbeeld B.V."
iban = "NL91ABNA0417164300"

[http]
port = {port}
public_url = "https://debsync.example.nl"

[connectors.books]
type = "csv"
path = "openstaand.csv"

[connectors.mb]
type = "moneybird"
administration_id = "123"
token = {{ env = "MB_TOKEN" }}

[actions.files]
type = "file"
directory = "outbox"
""",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "debsync", "-c", str(tmp_path / "connectors.toml"), "serve"]
    env = {**os.environ, "MB_TOKEN": "mb-token-for-the-test"}
    urls = subprocess.run(
        [*command, "--print-urls"], capture_output=True, text=True, env=env, timeout=120
    )
    assert urls.returncode == 0, urls.stderr
    assert [line.split() for line in urls.stdout.splitlines()] == [
        ["files", "https://debsync.example.nl/inbound/files"],
        ["mb", "https://debsync.example.nl/webhooks/mb"],
    ]

    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().startswith(f"listening on 127.0.0.1:{port}")
            assert get(f"http://127.0.0.1:{port}/healthz")[::2] == (200, b"ok\n")
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 0
        finally:
            child.kill()
