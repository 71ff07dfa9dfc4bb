"""The Moneybird connector against the stateful fake: the conformance kit, the proofs the
issue asks for (an old open invoice, pending_payment, Retry-After, 401/402, call counts), and
the CLI end to end over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
import respx

from debsync.config import Config, ConnectorInstance
from debsync.connectors.base import ConnectorContext, Page
from debsync.connectors.http import HttpFactory
from debsync.connectors.moneybird import MoneybirdConnector, MoneybirdSettings
from debsync.decisions import Reason
from debsync.errors import FatalConnectorError
from debsync.model import Money
from debsync.planning import plan_from_store
from debsync.store import Store
from debsync.sync import SyncEngine
from debsync.testing import ConnectorChecks, ConnectorHarness, SampleBook
from debsync.testing.connectors import fetch_all

from fake_http import FakeServer
from fake_moneybird import FakeMoneybird

API = "https://moneybird.test/api/v2"


async def _no_sleep(seconds: float) -> None:
    """Tests never wait: the connector's pauses are recorded by :class:`Sleeps` where needed."""


class Sleeps:
    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def make_connector(
    fake: FakeMoneybird, *, per_page: int = 100, sleep: Any = _no_sleep, attempts: int = 2
) -> MoneybirdConnector:
    settings = MoneybirdSettings.model_validate(
        {
            "administration_id": fake.administration_id,
            "token": fake.token,
            "base_url": API,
            "per_page": per_page,
        }
    )
    http = HttpFactory(attempts=attempts, sleep=sleep)
    return MoneybirdConnector("mb", settings, ConnectorContext("mb", Path("."), http=http))


def seed_book(fake: FakeMoneybird, book: SampleBook) -> None:
    ids = {}
    for debtor in book.debtors:
        address = debtor.address
        business = debtor.kind.value == "business"
        contact = fake.add_contact(
            company_name=debtor.name if business else "",
            firstname="" if business else debtor.name,
            lastname="",
            email=debtor.emails[0],
            phone=debtor.phones[0],
            address1=address.lines[0] if address else "",
            zipcode=address.postcode if address else "",
            city=address.city if address else "",
            country="NL",
            chamber_of_commerce=debtor.kvk or "",
            customer_id=debtor.external_id,
        )
        ids[debtor.external_id] = (contact["id"], debtor.language.value)
    for invoice in book.invoices:
        contact_id, language = ids[invoice.debtor_id]
        fake.add_invoice(
            contact_id,
            invoice.number,
            total=f"{invoice.total.amount:.2f}",
            unpaid=f"{invoice.open_amount.amount:.2f}",
            currency=invoice.currency,
            language=language,
            invoice_date=str(invoice.issue_date),
            due_date=str(invoice.due_date),
            payment_reference=invoice.payment_reference,
        )


class MoneybirdHarness(ConnectorHarness):
    min_pages = 3

    def __init__(self, router: respx.MockRouter) -> None:
        self.fake = FakeMoneybird()
        router.route(host="moneybird.test").mock(side_effect=self.fake)

    def connector(self) -> MoneybirdConnector:
        return make_connector(self.fake, per_page=3)

    def seed(self, book: SampleBook) -> None:
        seed_book(self.fake, book)

    def set_open_amount(self, number: str, amount: Money) -> None:
        unpaid = Decimal(self.fake.by_number(number)["total_unpaid"])
        self.fake.pay(number, unpaid - amount.amount)

    def remove(self, number: str) -> None:
        self.fake.pay(number, Decimal(self.fake.by_number(number)["total_unpaid"]))

    def fail_next(self, kind: Literal["transient", "fatal"]) -> None:
        if kind == "transient":
            self.fake.always = 503
        else:
            self.fake.revoked = True


class TestMoneybirdConnector(ConnectorChecks):
    @pytest.fixture
    def harness(self, respx_mock: respx.MockRouter) -> ConnectorHarness:
        return MoneybirdHarness(respx_mock)


@pytest.fixture
def fake(respx_mock: respx.MockRouter) -> FakeMoneybird:
    fake = FakeMoneybird()
    respx_mock.route(host="moneybird.test").mock(side_effect=fake)
    return fake


def contact(fake: FakeMoneybird, **fields: Any) -> str:
    base = {"company_name": "Bakkerij De Gouden Korrel B.V.", "email": "info@korrel.example.nl"}
    return str(fake.add_contact(**{**base, **fields})["id"])


def invoice(fake: FakeMoneybird, contact_id: str, number: str, **fields: Any) -> dict[str, Any]:
    dates = {"invoice_date": "2026-09-01", "due_date": "2026-10-01"}
    return fake.add_invoice(contact_id, number, **{"total": "121.00", **dates, **fields})


def invoices(pages: list[Page]) -> dict[str, Any]:
    return {i.number: i for page in pages for i in page.invoices}


def test_an_open_invoice_from_three_years_ago_is_synced(fake: FakeMoneybird) -> None:
    """Moneybird's list defaults to period this_year; the connector asks for a wide period."""
    owner = contact(fake)
    invoice(fake, owner, "2023-0042", invoice_date="2023-06-01", due_date="2023-07-01")
    invoice(fake, owner, "2026-0001")
    assert set(invoices(fetch_all(make_connector(fake)))) == {"2023-0042", "2026-0001"}


def test_pending_payment_is_direct_debit_and_money_is_exact(fake: FakeMoneybird) -> None:
    owner = contact(fake)
    invoice(fake, owner, "2026-0002", state="pending_payment")
    invoice(fake, owner, "2026-0003", total="1234.56", unpaid="0.10")
    found = invoices(fetch_all(make_connector(fake)))
    assert found["2026-0002"].direct_debit is True
    assert found["2026-0003"].direct_debit is False
    assert found["2026-0003"].open_amount == Money.of(Decimal("0.10"))
    assert found["2026-0003"].total.amount == Decimal("1234.56")
    assert isinstance(found["2026-0003"].external_id, str)


def test_pending_payment_is_not_dunned_while_the_collection_runs(tmp_path: Path) -> None:
    """Through the CLI's planner: an overdue direct-debit invoice gets no step within the
    policy's direct-debit grace (after it the core treats the debit as failed; see the docs)."""
    fake = FakeMoneybird()
    owner = contact(fake)
    due = (date.today() - timedelta(days=5)).isoformat()
    invoice(fake, owner, "2026-0100", state="pending_payment", due_date=due)
    invoice(fake, owner, "2026-0101", due_date=due)
    with FakeServer(fake) as server:
        config = write_config(tmp_path, server.url, fake)
        assert cli(config, "sync").returncode == 0
        held = cli(config, "plan", "--explain", "2026-0100")
        dunned = cli(config, "plan", "--explain", "2026-0101")
    assert held.returncode == 0 and dunned.returncode == 0, held.stderr + dunned.stderr
    assert "reminder by email" in dunned.stdout
    assert "reminder by email" not in held.stdout, held.stdout


def test_email_precedence_and_kind(fake: FakeMoneybird) -> None:
    business = contact(
        fake,
        send_invoices_to_email="facturen@korrel.example.nl",
        contact_people=[{"email": "piet@korrel.example.nl"}],
    )
    person = contact(
        fake, company_name="", firstname="Jan", lastname="Jansen", email="j@example.nl"
    )
    invoice(fake, business, "2026-0004")
    invoice(fake, person, "2026-0005", language="en")
    debtors = {d.external_id: d for page in fetch_all(make_connector(fake)) for d in page.debtors}
    assert debtors[business].emails == (
        "facturen@korrel.example.nl",
        "info@korrel.example.nl",
        "piet@korrel.example.nl",
    )
    assert debtors[business].kind.value == "business"
    assert (debtors[person].kind.value, debtors[person].name) == ("consumer", "Jan Jansen")
    assert debtors[person].language.value == "en"


def test_a_bad_invoice_is_a_located_reject(fake: FakeMoneybird) -> None:
    owner = contact(fake)
    bad = invoice(fake, owner, "2026-0006", due_date="not a date")
    invoice(fake, owner, "2026-0007")
    pages = fetch_all(make_connector(fake))
    (reject,) = [r for page in pages for r in page.rejects]
    assert reject.ref == f"sales invoice {bad['id']}" and reject.invoice_id == bad["id"]
    assert "2026-0007" in invoices(pages)


def sync_twice(fake: FakeMoneybird) -> tuple[Any, list[Page]]:
    first = fetch_all(make_connector(fake))
    return first[-1].cursor, first


def test_unchanged_sync_costs_two_calls_and_changes_cost_one_per_hundred(
    fake: FakeMoneybird,
) -> None:
    owner = contact(fake)
    for n in range(250):
        invoice(fake, owner, f"2026-{n:04d}")
    cursor, _ = sync_twice(fake)
    assert len(fake.calls) == 3  # 250 invoices, 100 per page
    fake.calls.clear()
    pages = fetch_all(make_connector(fake), cursor)
    assert len(fake.calls) == 2 and not [i for p in pages for i in p.invoices]
    for n in range(150):
        fake.pay(f"2026-{n:04d}", Decimal("1.00"))
    fake.pay("2026-0200", Decimal("121.00"))  # paid in full: leaves the open set
    fake.calls.clear()
    pages = fetch_all(make_connector(fake), cursor)
    assert len(fake.calls) == 2 + 2  # 150 changed ids in two POSTs of at most 100
    assert len([i for p in pages for i in p.invoices]) == 150
    assert [c for p in pages for c in p.closed] == [fake.by_number("2026-0200")["id"]]


def test_a_changed_contact_is_fetched_by_synchronization(fake: FakeMoneybird) -> None:
    owner = contact(fake)
    invoice(fake, owner, "2026-0008")
    cursor, _ = sync_twice(fake)
    fake.update_contact(owner, email="nieuw@korrel.example.nl")
    fake.calls.clear()
    pages = fetch_all(make_connector(fake), cursor)
    (debtor,) = [d for p in pages for d in p.debtors]
    assert debtor.emails == ("nieuw@korrel.example.nl",)
    assert fake.calls[-1] == f"POST /api/v2/{fake.administration_id}/contacts/synchronization.json"


def test_a_429_waits_the_retry_after(fake: FakeMoneybird) -> None:
    owner = contact(fake)
    invoice(fake, owner, "2026-0009")
    fake.failing = [429]
    sleeps = Sleeps()
    found = invoices(fetch_all(make_connector(fake, sleep=sleeps, attempts=3)))
    assert "2026-0009" in found
    assert sleeps.asked == [7.0]
    assert len(fake.calls) == 2


@pytest.mark.parametrize(
    ("status", "hint"), [(401, "credentials refused"), (402, "subscription is not active")]
)
def test_401_and_402_are_clear_fatal_errors(fake: FakeMoneybird, status: int, hint: str) -> None:
    if status == 401:
        fake.revoked = True
    else:
        fake.subscription_active = False
    with pytest.raises(FatalConnectorError) as raised:
        fetch_all(make_connector(fake))
    assert hint in str(raised.value)
    assert "mb-test-token" not in str(raised.value)


# -- end to end, as a new user runs it -------------------------------------------------------


def write_config(tmp_path: Path, url: str, fake: FakeMoneybird) -> Path:
    config = tmp_path / "connectors.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "debsync.db"}"

[creditor]
name = "Voorbeeld Installatietechniek B.V."
email = "debiteuren@voorbeeld-installatie.nl"
iban = "NL91ABNA0417164300"
address = {{ lines = ["Industrieweg 12"], postcode = "3542 AD", city = "Utrecht" }}

[connectors.mb]
type = "moneybird"
administration_id = "{fake.administration_id}"
base_url = "{url}/api/v2"
token = {{ env = "MB_TOKEN" }}

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


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MB_TOKEN": "mb-test-token"}
    command = [sys.executable, "-m", "debsync", "-c", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_sync_status_and_run_once_end_to_end(tmp_path: Path) -> None:
    fake = FakeMoneybird()
    owner = contact(fake)
    overdue = (date(2026, 11, 23) - timedelta(days=40)).isoformat()
    invoice(fake, owner, "2026-0200", due_date=overdue, invoice_date="2026-09-01")
    invoice(fake, owner, "2023-0001", invoice_date="2023-02-01", due_date="2023-03-01")
    with FakeServer(fake) as server:
        config = write_config(tmp_path, server.url, fake)
        synced = cli(config, "sync")
        assert synced.returncode == 0, synced.stderr
        status = cli(config, "status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert "mb" in json.dumps(report)
        ran = cli(config, "run", "--once")
        assert ran.returncode == 0, ran.stderr
        again = cli(config, "sync")
        assert again.returncode == 0, again.stderr
    assert "mb-test-token" not in synced.stdout + synced.stderr + status.stdout


# -- Moneybird's own reminders (native_reminders) ---------------------------------------------


def reminding(fake: FakeMoneybird) -> dict[str, dict[str, Any]]:
    """Three invoices: one Moneybird's workflow will remind, one it reminded and that someone
    paused, one it leaves alone."""
    owner = contact(fake)
    return {
        "scheduled": invoice(fake, owner, "2026-0301", next_reminder="2026-11-30"),
        "paused": invoice(fake, owner, "2026-0302", reminder_count=1, paused=True),
        "plain": invoice(fake, owner, "2026-0303"),
    }


def with_mode(fake: FakeMoneybird, mode: str) -> MoneybirdConnector:
    made = make_connector(fake)
    made.settings = made.settings.model_copy(update={"native_reminders": mode})
    return made


def pauses(fake: FakeMoneybird) -> list[str]:
    return [c for c in fake.calls if c.endswith("/pause.json")]


def test_respect_leaves_what_moneybird_reminds_to_moneybird(fake: FakeMoneybird) -> None:
    ids = reminding(fake)
    found = invoices(fetch_all(with_mode(fake, "respect")))
    flags = {number: inv.reminded_by_source for number, inv in found.items()}
    assert flags == {"2026-0301": True, "2026-0302": False, "2026-0303": False}
    assert pauses(fake) == [] and fake.invoices[ids["scheduled"]["id"]]["paused"] is False


def test_pause_pauses_moneybirds_reminders_once_and_debsync_duns(fake: FakeMoneybird) -> None:
    ids = reminding(fake)
    first = fetch_all(with_mode(fake, "pause"))
    assert not any(inv.reminded_by_source for inv in invoices(first).values())
    scheduled = ids["scheduled"]["id"]
    assert pauses(fake) == [
        f"POST /api/v2/{fake.administration_id}/sales_invoices/{scheduled}/pause.json"
    ]
    assert fake.invoices[scheduled]["paused"] is True
    cursor = first[-1].cursor
    assert isinstance(cursor, dict) and cursor["paused"] == [scheduled]
    fake.calls.clear()
    again = fetch_all(with_mode(fake, "pause"), cursor)  # the pause moved its version
    assert "2026-0301" in invoices(again) and pauses(fake) == []
    assert again[-1].cursor["paused"] == [scheduled]  # type: ignore[index,call-overload]


def test_pause_is_not_repeated_when_moneybird_says_it_is_paused_already(
    fake: FakeMoneybird,
) -> None:
    ids = reminding(fake)
    fake.invoices[ids["scheduled"]["id"]]["paused"] = True  # paused between list and pause
    listed = {**fake.invoices[ids["scheduled"]["id"]], "paused": False}
    made = with_mode(fake, "pause")

    async def pause_stale() -> Any:
        from debsync.connectors.moneybird import _State

        state = _State({}, {}, set())
        async with made._client() as http:
            await made._pause(http, [listed], state)
        return state.paused

    assert asyncio.run(pause_stale()) == {ids["scheduled"]["id"]}  # a 422, taken as done


def test_ignore_neither_flags_nor_pauses(fake: FakeMoneybird) -> None:
    reminding(fake)
    found = invoices(fetch_all(with_mode(fake, "ignore")))
    assert not any(inv.reminded_by_source for inv in found.values())
    assert pauses(fake) == []


def test_the_plan_says_moneybird_reminds_a_respected_invoice(
    fake: FakeMoneybird, sqlite_store: Store, tmp_path: Path
) -> None:
    owner = contact(fake)
    invoice(fake, owner, "2026-0400", next_reminder="2026-11-30")
    invoice(fake, owner, "2026-0401")
    made = make_connector(fake)
    instance = ConnectorInstance("mb", "moneybird", MoneybirdConnector, made.settings)
    assert asyncio.run(SyncEngine(sqlite_store).run(instance, made)).ok
    config = Config(path=tmp_path / "connectors.toml", store_url="", connectors={"mb": instance})
    now = datetime.now(UTC)
    plan = plan_from_store(config, sqlite_store, now)
    reasons = {d.number: d.reason for d in plan.decisions}
    assert reasons["2026-0400"] is Reason.SOURCE_REMINDS
    assert reasons["2026-0401"] is Reason.PLANNED
    assert "own reminders" in plan.explain("2026-0400")[0]


def test_list_administrations_gives_id_and_name(fake: FakeMoneybird) -> None:
    fake.administrations.append({"id": "987654321", "name": "Voorbeeld Holding B.V."})
    found = asyncio.run(make_connector(fake).list_administrations())
    assert found == [
        (fake.administration_id, "Voorbeeld B.V."),
        ("987654321", "Voorbeeld Holding B.V."),
    ]
    assert fake.calls == ["GET /api/v2/administrations.json"]
