"""Moneybird webhooks: the signature check (rotation, staleness), deliveries recorded once,
and a payment pushed by Moneybird closing the invoice in the store so the next plan no longer
duns it; ``debsync webhooks register`` against the fake."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import respx
import sqlalchemy as sa

from debsync import webhooks
from debsync.config import Config, ConnectorInstance, CreditorSettings
from debsync.connectors.base import ConnectorContext, WebhookRefused
from debsync.connectors.moneybird import MoneybirdConnector, MoneybirdSettings
from debsync.planning import plan_from_store
from debsync.store import Store
from debsync.store.schema import connector_state, debtors, invoices, received_events, sync_runs
from debsync.sync import SyncEngine

from conftest import FrozenClock
from fake_http import FakeServer
from fake_moneybird import FakeMoneybird

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
API = "https://moneybird.test/api/v2"
SECRET = "whsec-new-0123456789"
OLD_SECRET = "whsec-old-9876543210"


def settings(fake: FakeMoneybird, **extra: Any) -> MoneybirdSettings:
    return MoneybirdSettings.model_validate(
        {
            "administration_id": fake.administration_id,
            "token": fake.token,
            "base_url": API,
            "webhook_secret": SECRET,
            **extra,
        }
    )


def connector(fake: FakeMoneybird) -> MoneybirdConnector:
    context = ConnectorContext("mb", Path("."), clock=lambda: NOW)
    return MoneybirdConnector("mb", settings(fake), context)


@pytest.fixture
def fake(respx_mock: respx.MockRouter) -> FakeMoneybird:
    fake = FakeMoneybird(clock=lambda: NOW.timestamp())
    respx_mock.route(host="moneybird.test").mock(side_effect=fake)
    return fake


def seeded(fake: FakeMoneybird) -> dict[str, Any]:
    owner = fake.add_contact(company_name="Bakkerij De Gouden Korrel B.V.", email="i@korrel.nl")
    fake.add_invoice(
        owner["id"], "2026-0002", total="50.00", invoice_date="2026-09-01", due_date="2026-10-01"
    )
    return fake.add_invoice(
        owner["id"], "2026-0001", total="121.00", invoice_date="2026-09-01", due_date="2026-10-01"
    )


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


# -- the signature ---------------------------------------------------------------------------


def test_a_signed_fresh_delivery_is_accepted_and_gives_its_idempotency_key(
    fake: FakeMoneybird,
) -> None:
    invoice = seeded(fake)
    headers, body = fake.delivery("sales_invoice_updated", invoice, secrets=[SECRET], key="k-1")
    assert connector(fake).verify_webhook(lowered(headers), body) == "k-1"


def test_during_a_rotation_either_secret_is_enough(fake: FakeMoneybird) -> None:
    """Moneybird signs with every active secret during a rotation, one v1= each."""
    invoice = seeded(fake)
    headers, body = fake.delivery("sales_invoice_updated", invoice, secrets=[OLD_SECRET, SECRET])
    assert connector(fake).verify_webhook(lowered(headers), body)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered", "does not match"),
        ("old secret only", "does not match"),
        ("stale", "more than 5 minutes"),
        ("from the future", "more than 5 minutes"),
        ("unsigned", "no Moneybird-Signature"),
        ("unknown scheme only", "no t= or no v1="),
        ("no idempotency key", "Idempotency-Key"),
    ],
)
def test_deliveries_that_cannot_be_trusted_are_refused(
    fake: FakeMoneybird, case: str, reason: str
) -> None:
    invoice = seeded(fake)
    at = {"stale": NOW - timedelta(minutes=6), "from the future": NOW + timedelta(minutes=6)}
    secrets = [OLD_SECRET] if case == "old secret only" else [SECRET]
    when = at.get(case, NOW).timestamp()
    headers, body = fake.delivery("sales_invoice_updated", invoice, secrets=secrets, at=when)
    if case == "tampered":
        body = body.replace(b"121.00", b"1.00")
    if case == "unsigned":
        del headers["Moneybird-Signature"]
    if case == "unknown scheme only":
        headers["Moneybird-Signature"] = headers["Moneybird-Signature"].replace("v1=", "v9=")
    if case == "no idempotency key":
        del headers["Idempotency-Key"]
    with pytest.raises(WebhookRefused, match=reason):
        connector(fake).verify_webhook(lowered(headers), body)


def test_a_stale_timestamp_is_refused_even_with_a_valid_signature(fake: FakeMoneybird) -> None:
    invoice = seeded(fake)
    stamp = (NOW - timedelta(seconds=301)).timestamp()
    headers, body = fake.delivery("sales_invoice_updated", invoice, secrets=[SECRET], at=stamp)
    with pytest.raises(WebhookRefused):
        connector(fake).verify_webhook(lowered(headers), body)
    fresh = (NOW - timedelta(seconds=299)).timestamp()
    headers, body = fake.delivery("sales_invoice_updated", invoice, secrets=[SECRET], at=fresh)
    assert connector(fake).verify_webhook(lowered(headers), body)


# -- applied once ----------------------------------------------------------------------------


class Books:
    """A store synced from the fake, and the configuration that names it."""

    def __init__(self, fake: FakeMoneybird, store: Store, tmp_path: Path) -> None:
        self.fake, self.store = fake, store
        self.clock = FrozenClock(NOW)
        self.config = Config(
            path=tmp_path / "connectors.toml",
            store_url="",
            creditor=CreditorSettings(name="Voorbeeld B.V.", iban="NL91ABNA0417164300"),
            connectors={
                "mb": ConnectorInstance("mb", "moneybird", MoneybirdConnector, settings(fake))
            },
        )

    def sync(self) -> None:
        instance = self.config.connectors["mb"]
        context = ConnectorContext("mb", Path("."), clock=self.clock)
        made = MoneybirdConnector("mb", instance.settings, context)  # type: ignore[arg-type]
        result = asyncio.run(SyncEngine(self.store, clock=self.clock).run(instance, made))
        assert result.ok, result.error

    def receive(self, headers: dict[str, str], body: bytes) -> webhooks.Received:
        return asyncio.run(
            webhooks.receive(self.config, self.store, "mb", headers, body, clock=self.clock)
        )

    def invoice(self, number: str) -> Any:
        with self.store.engine.connect() as conn:
            return conn.execute(sa.select(invoices).where(invoices.c.number == number)).one()

    def planned(self) -> set[str]:
        plan = plan_from_store(self.config, self.store, self.clock())
        return {line.number for action in plan.actions for line in action.lines}


@pytest.fixture
def books(fake: FakeMoneybird, store: Store, tmp_path: Path) -> Books:
    """On SQLite and, when a server is configured, PostgreSQL."""
    return Books(fake, store, tmp_path)


def test_a_payment_pushed_closes_the_invoice_and_the_next_plan_no_longer_duns_it(
    books: Books,
) -> None:
    invoice = seeded(books.fake)
    books.sync()
    assert books.planned() == {"2026-0001", "2026-0002"}
    payment = books.fake.pay("2026-0001", Decimal("121.00"))
    books.fake.calls.clear()
    headers, body = books.fake.delivery(
        "payment_registered", payment, entity_type="Payment", secrets=[SECRET]
    )
    received = books.receive(headers, body)
    assert (received.outcome, received.status) == ("applied", 200), received.reason
    assert books.invoice("2026-0001").state == "closed"
    assert books.planned() == {"2026-0002"}
    # one call: the payment's invoice, by the synchronization POST
    assert books.fake.calls == [
        f"POST /api/v2/{books.fake.administration_id}/sales_invoices/synchronization.json"
    ]
    assert invoice["id"] == books.invoice("2026-0001").external_id


def test_a_delivery_that_cannot_be_applied_now_is_applied_when_it_comes_again(
    books: Books,
) -> None:
    """Moneybird refuses the fetch of the payment's invoice: 503, nothing recorded, so its
    retry of the same delivery applies it."""
    seeded(books.fake)
    books.sync()
    payment = books.fake.pay("2026-0001", Decimal("121.00"))
    headers, body = books.fake.delivery(
        "payment_registered", payment, entity_type="Payment", secrets=[SECRET], key="pay-1"
    )
    books.fake.revoked = True
    failed = books.receive(headers, body)
    assert (failed.outcome, failed.status) == ("failed", 503)
    assert "mb-test-token" not in (failed.reason or "")
    assert books.invoice("2026-0001").state == "open"
    books.fake.revoked = False
    assert books.receive(headers, body).outcome == "applied"
    assert books.invoice("2026-0001").state == "closed"


def test_a_delivery_is_applied_once_however_often_it_arrives(books: Books) -> None:
    invoice = seeded(books.fake)
    books.sync()
    books.fake.pay("2026-0001", Decimal("21.00"))
    headers, body = books.fake.delivery(
        "sales_invoice_updated", invoice, secrets=[SECRET], key="retry-me"
    )
    outcomes = [books.receive(headers, body).outcome for _ in range(3)]
    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert books.invoice("2026-0001").open_minor == 10000
    with books.store.engine.connect() as conn:
        recorded = conn.execute(sa.select(received_events.c.event_id)).scalars().all()
        runs = conn.execute(sa.select(sync_runs.c.id)).all()
    assert recorded == ["retry-me"]
    assert len(runs) == 2  # the sync, and the one delivery applied


def test_a_delivery_leaves_the_cursor_and_the_freshness_alone(books: Books) -> None:
    """The next sync still sees the change through the synchronization API, and a webhook
    never makes stale data look fresh."""
    invoice = seeded(books.fake)
    books.sync()
    with books.store.engine.connect() as conn:
        before = conn.execute(sa.select(connector_state)).one()
    books.clock.now = NOW + timedelta(minutes=1)
    books.fake.pay("2026-0001", Decimal("121.00"))
    headers, body = books.fake.delivery(
        "sales_invoice_state_changed_to_paid", invoice, secrets=[SECRET]
    )
    assert books.receive(headers, body).outcome == "applied"
    with books.store.engine.connect() as conn:
        after = conn.execute(sa.select(connector_state)).one()
    assert (after.cursor, after.last_success_at, after.last_run_id) == (
        before.cursor,
        before.last_success_at,
        before.last_run_id,
    )


def test_refused_stale_and_unsynced_deliveries(books: Books) -> None:
    invoice = seeded(books.fake)
    headers, body = books.fake.delivery("sales_invoice_updated", invoice, secrets=[SECRET])
    unsynced = books.receive(headers, body)
    assert unsynced.outcome == "ignored"  # the first sync brings it in
    books.sync()
    stale_at = (NOW - timedelta(minutes=10)).timestamp()
    headers, body = books.fake.delivery(
        "sales_invoice_updated", invoice, secrets=[SECRET], at=stale_at
    )
    refused = books.receive(headers, body)
    assert (refused.outcome, refused.status) == ("refused", 401)
    # an entity older than what the last sync saw changes nothing
    older = {**invoice, "version": invoice["version"] - 1, "total_unpaid": "1.00"}
    headers, body = books.fake.delivery("sales_invoice_updated", older, secrets=[SECRET])
    assert books.receive(headers, body).outcome == "ignored"
    assert books.invoice("2026-0001").open_minor == 12100


def test_a_contact_change_is_applied_with_the_language_the_sync_saw(books: Books) -> None:
    seeded(books.fake)
    books.sync()
    contact = next(iter(books.fake.contacts.values()))
    books.fake.update_contact(contact["id"], email="nieuw@korrel.nl")
    headers, body = books.fake.delivery(
        "contact_changed",
        books.fake.contacts[contact["id"]],
        entity_type="Contact",
        secrets=[SECRET],
    )
    assert books.receive(headers, body).outcome == "applied"
    with books.store.engine.connect() as conn:
        row = conn.execute(sa.select(debtors)).one()
    assert json.dumps(row.emails) == '["nieuw@korrel.nl"]'


# -- registering -----------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[FakeMoneybird, str]]:
    fake = FakeMoneybird()
    with FakeServer(fake) as server:
        yield fake, server.url


def test_register_subscribes_the_events_and_returns_the_secret_once(
    served: tuple[FakeMoneybird, str],
) -> None:
    fake, url = served
    made = MoneybirdConnector(
        "mb",
        settings(fake, base_url=f"{url}/api/v2", webhook_secret=None),
        ConnectorContext("mb", Path(".")),
    )
    secret = asyncio.run(made.register_webhook("https://debsync.example.nl/webhooks/mb"))
    (hook,) = fake.webhooks
    assert secret == hook["secret"]
    assert hook["url"] == "https://debsync.example.nl/webhooks/mb"
    assert "payment_registered" in hook["enabled_events"]
    assert "sales_invoice_state_changed" in hook["enabled_events"]


def test_the_cli_registers_and_prints_the_secret_with_where_it_belongs(
    served: tuple[FakeMoneybird, str], tmp_path: Path
) -> None:
    fake, url = served
    config = tmp_path / "connectors.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "debsync.db"}"

[connectors.mb]
type = "moneybird"
administration_id = "{fake.administration_id}"
base_url = "{url}/api/v2"
token = {{ env = "MB_TOKEN" }}
""",
        encoding="utf-8",
    )
    env = {**os.environ, "MB_TOKEN": fake.token}
    command = [sys.executable, "-m", "debsync", "-c", str(config), "webhooks", "register", "mb"]
    done = subprocess.run(
        [*command, "https://debsync.example.nl/webhooks/mb"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (hook,) = fake.webhooks
    assert hook["secret"] in done.stdout
    assert 'webhook_secret = { env = "DEBSYNC_MB_WEBHOOK_SECRET" }' in done.stdout
    assert fake.token not in done.stdout + done.stderr
