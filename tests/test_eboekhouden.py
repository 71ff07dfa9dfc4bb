"""The e-Boekhouden connector against fakes of its REST and SOAP APIs: the conformance kit,
the session, the cost of an unchanged sync, 429 handling, SOAP failures, and the CLI end to
end over real HTTP."""

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

import httpx
import pytest
import respx

from debsync.config import ConnectorInstance
from debsync.connectors.base import ConnectorContext
from debsync.connectors.eboekhouden import EboekhoudenConnector, EboekhoudenSettings
from debsync.connectors.http import HttpFactory
from debsync.errors import FatalConnectorError
from debsync.model import Invoice, Money
from debsync.store import Store
from debsync.sync import SyncEngine
from debsync.testing import ConnectorChecks, ConnectorHarness, SampleBook
from debsync.testing.connectors import Synced, fetch_all

from fake_eboekhouden import API_TOKEN, FakeRest, FakeSoap, Mutation, OpenPost, relation
from fake_http import FakeServer

BASE = "https://api.e-boekhouden.nl"
SOAP = "https://soap.e-boekhouden.nl/soap.asmx"


class FakeTime:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, tzinfo=UTC)
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def euro_book(book: SampleBook) -> SampleBook:
    """e-Boekhouden has no currency: the sample book's dollar invoice is seeded in euros."""

    def euro(invoice: Invoice) -> Invoice:
        return invoice.model_copy(
            update={
                "total": Money.of(invoice.total.amount),
                "open_amount": Money.of(invoice.open_amount.amount),
            }
        )

    return SampleBook(book.debtors, tuple(euro(i) for i in book.invoices))


def seed_rest(fake: FakeRest, book: SampleBook) -> dict[str, int]:
    """The book as relations and mutations; returns invoice number → mutation id."""
    ids = {d.external_id: 100 + n for n, d in enumerate(book.debtors, start=1)}
    for d in book.debtors:
        address = d.address
        fake.relations[ids[d.external_id]] = relation(
            ids[d.external_id],
            d.name,
            kind="B" if d.kind.value == "business" else "P",
            code=d.external_id,
            emailAddress=d.emails[0],
            phoneNumber=d.phones[0],
            address=address.lines[0] if address else "",
            postalCode=address.postcode if address else "",
            city=address.city if address else "",
            companyRegistrationNumber=d.kvk or "",
            vatNumber=d.vat or "",
        )
    numbers = {}
    for n, i in enumerate(book.invoices, start=1):
        mutation_id = 5000 + n
        numbers[i.number] = mutation_id
        fake.mutations[mutation_id] = Mutation(
            id=mutation_id,
            invoice_number=i.number,
            relation_id=ids[i.debtor_id],
            date=i.issue_date,
            term=(i.due_date - i.issue_date).days,
            total=i.total.amount,
            paid=i.total.amount - i.open_amount.amount,
        )
    return numbers


def rest_connector(
    base_url: str, time: FakeTime | None = None, **settings: Any
) -> EboekhoudenConnector:
    factory = HttpFactory(clock=time.clock, sleep=time.sleep) if time else HttpFactory()
    config = EboekhoudenSettings.model_validate(
        {"token": API_TOKEN, "source": "debsync", "base_url": base_url, **settings}
    )
    return EboekhoudenConnector("eb", config, ConnectorContext("eb", Path("."), http=factory))


class RestHarness(ConnectorHarness):
    min_pages = 3

    def __init__(self, router: respx.MockRouter) -> None:
        self.time = FakeTime()
        self.fake = FakeRest(clock=self.time.clock)
        self.numbers: dict[str, int] = {}
        router.route(host="api.e-boekhouden.nl").mock(side_effect=self.fake)

    def connector(self) -> EboekhoudenConnector:
        return rest_connector(BASE, self.time, page_size=3, calls_per_minute=60_000)

    def seed(self, book: SampleBook) -> None:
        self.numbers = seed_rest(self.fake, book)

    def set_open_amount(self, number: str, amount: Money) -> None:
        mutation = self.fake.mutations[self.numbers[number]]
        mutation.paid = mutation.total - amount.amount

    def remove(self, number: str) -> None:
        mutation = self.fake.mutations[self.numbers[number]]
        mutation.paid = mutation.total

    def fail_next(self, kind: Literal["transient", "fatal"]) -> None:
        if kind == "transient":
            self.fake.queued.extend([httpx.Response(503)] * 10)
        else:
            self.fake.queued.append(
                httpx.Response(401, json={"type": "security", "title": "x", "status": 401})
            )
            self.fake.queued.append(
                httpx.Response(401, json={"type": "security", "title": "x", "status": 401})
            )


class TestRestConformance(ConnectorChecks):
    @pytest.fixture
    def harness(self, respx_mock: respx.MockRouter) -> ConnectorHarness:
        return RestHarness(respx_mock)

    @pytest.fixture
    def synced(self, harness: ConnectorHarness, debsync_store: Store) -> Synced:
        synced = Synced(harness, debsync_store)
        synced.book = euro_book(synced.book)
        harness.seed(synced.book)
        return synced


def soap_settings(**extra: Any) -> EboekhoudenSettings:
    fake = FakeSoap()
    return EboekhoudenSettings.model_validate(
        {
            "api": "soap",
            "source": "debsync",
            "username": fake.username,
            "security_code_1": fake.code_1,
            "security_code_2": fake.code_2,
            "default_payment_term_days": 30,
            **extra,
        }
    )


class SoapHarness(ConnectorHarness):
    def __init__(self, router: respx.MockRouter) -> None:
        self.time = FakeTime()
        self.fake = FakeSoap()
        router.post(SOAP).mock(side_effect=self.fake)

    def connector(self) -> EboekhoudenConnector:
        factory = HttpFactory(clock=self.time.clock, sleep=self.time.sleep)
        return EboekhoudenConnector(
            "eb", soap_settings(), ConnectorContext("eb", Path("."), http=factory)
        )

    def seed(self, book: SampleBook) -> None:
        names = {d.external_id: d.name for d in book.debtors}
        self.fake.posts = [
            OpenPost(
                i.number,
                i.debtor_id,
                names[i.debtor_id],
                i.issue_date,
                i.total.amount,
                i.total.amount - i.open_amount.amount,
            )
            for i in book.invoices
        ]

    def post(self, number: str) -> OpenPost:
        return next(p for p in self.fake.posts if p.number == number)

    def set_open_amount(self, number: str, amount: Money) -> None:
        post = self.post(number)
        post.paid = post.total - amount.amount

    def remove(self, number: str) -> None:
        self.fake.posts.remove(self.post(number))

    def fail_next(self, kind: Literal["transient", "fatal"]) -> None:
        if kind == "transient":
            self.fake.queued.extend([httpx.Response(503)] * 10)
        else:
            self.fake.failing.append(("E0001", "Ongeldige inloggegevens."))


class TestSoapConformance(ConnectorChecks):
    @pytest.fixture
    def harness(self, respx_mock: respx.MockRouter) -> ConnectorHarness:
        return SoapHarness(respx_mock)

    @pytest.fixture
    def synced(self, harness: ConnectorHarness, debsync_store: Store) -> Synced:
        synced = Synced(harness, debsync_store)
        synced.book = euro_book(synced.book)
        harness.seed(synced.book)
        return synced


# -- the REST API's session, cost and rate limit --------------------------------------------


def engine_sync(connector: EboekhoudenConnector, store: Store, time: FakeTime) -> Any:
    instance = ConnectorInstance(
        name="eb", type_name="eboekhouden", cls=EboekhoudenConnector, settings=connector.settings
    )
    engine = SyncEngine(store, clock=time.clock)
    return asyncio.run(engine.run(instance, connector, allow_mass_close=True))


@pytest.fixture
def rest(respx_mock: respx.MockRouter) -> tuple[FakeRest, FakeTime]:
    time = FakeTime()
    fake = FakeRest(clock=time.clock)
    respx_mock.route(host="api.e-boekhouden.nl").mock(side_effect=fake)
    return fake, time


def many(fake: FakeRest, invoices: int, relations: int) -> None:
    for r in range(1, relations + 1):
        fake.relations[r] = relation(
            r,
            f"Klant {r} B.V.",
            emailAddress=f"info@klant{r}.example.nl",
            emailAddressReminder=f"debiteuren@klant{r}.example.nl",
        )
    for n in range(1, invoices + 1):
        fake.mutations[n] = Mutation(
            n, f"F{n:06d}", (n % relations) + 1, date(2026, 10, 1), 14, Decimal("121.00")
        )


def test_an_unchanged_sync_costs_the_list_and_the_session_only(
    rest: tuple[FakeRest, FakeTime], store: Store
) -> None:
    fake, time = rest
    many(fake, invoices=25, relations=7)
    first = engine_sync(rest_connector(BASE, time, page_size=10), store, time)
    assert first.ok and first.counts.invoices_new == 25 and first.counts.debtors_new == 7
    assert fake.calls["GET /v1/relation/{id}"] == 7  # each relation's detail once
    assert fake.calls["GET /v1/mutation/{id}"] == 25
    fake.calls.clear()
    second = engine_sync(rest_connector(BASE, time, page_size=10), store, time)
    assert second.ok and second.counts.writes == 0
    assert fake.calls == {"POST /v1/session": 1, "GET /v1/mutation/invoice/outstanding": 3}


def test_relation_details_are_fetched_again_only_when_the_list_entry_changes(
    rest: tuple[FakeRest, FakeTime], store: Store
) -> None:
    fake, time = rest
    many(fake, invoices=6, relations=3)
    engine_sync(rest_connector(BASE, time), store, time)
    fake.relations[2]["name"] = "Klant 2 Holding B.V."  # the list's company changes
    fake.mutations[1].paid = Decimal("21.00")  # a partial payment: the term is known
    fake.calls.clear()
    result = engine_sync(rest_connector(BASE, time), store, time)
    assert (result.counts.debtors_changed, result.counts.partial_payments) == (1, 1)
    assert fake.calls["GET /v1/relation/{id}"] == 1
    assert fake.calls["GET /v1/mutation/{id}"] == 0


def test_the_reminder_address_comes_first_and_the_type_sets_the_kind(
    rest: tuple[FakeRest, FakeTime],
) -> None:
    fake, time = rest
    fake.relations[1] = relation(
        1,
        "J. Jansen",
        kind="P",
        emailAddress="jan@example.nl",
        emailAddressInvoice="facturen@example.nl",
        emailAddressReminder="herinnering@example.nl; jan@example.nl",
        mobilePhoneNumber="06 12345678",
        address="Dorpsstraat 1",
        postalCode="1234ab",
        city="Haarlem",
        iban="NL00BANK0000000000",
    )
    fake.mutations[7] = Mutation(7, "F7", 1, date(2026, 10, 1), None, Decimal("100.10"))
    (page,) = fetch_all(rest_connector(BASE, time, default_payment_term_days=14))
    (debtor,) = page.debtors
    assert debtor.kind.value == "consumer"
    assert debtor.emails == ("herinnering@example.nl", "jan@example.nl", "facturen@example.nl")
    assert debtor.phones == ("+31612345678",) and debtor.iban is None
    assert debtor.address is not None and debtor.address.postcode == "1234 AB"
    (reject,) = page.rejects
    assert (reject.ref, reject.dropped) == ("relation 1", True)
    assert reject.reason.startswith("iban dropped")
    (invoice,) = page.invoices
    assert invoice.open_amount == Money.of("100.10")
    assert invoice.due_date == date(2026, 10, 15)  # no termOfPayment: the default


def test_an_expired_session_is_renewed_once(
    rest: tuple[FakeRest, FakeTime], debsync_store: Store
) -> None:
    fake, time = rest
    many(fake, invoices=4, relations=2)
    connector = rest_connector(BASE, time, page_size=2)

    async def run() -> list[Any]:
        pages = []
        async for page in connector.fetch(None):
            pages.append(page)
            fake.expire_sessions()  # e-Boekhouden ends the session under the sync
        return pages

    pages = asyncio.run(run())
    assert sum(len(p.invoices) for p in pages) == 4
    sessions = fake.calls["POST /v1/session"]
    assert sessions == 3  # the first, and one renewal after each of two expiries


def test_a_session_refused_after_renewal_is_fatal(rest: tuple[FakeRest, FakeTime]) -> None:
    fake, time = rest
    many(fake, invoices=1, relations=1)
    fake.expires_in = 0  # every session token is dead on arrival
    with pytest.raises(FatalConnectorError, match="401"):
        fetch_all(rest_connector(BASE, time))
    assert fake.calls["POST /v1/session"] == 2  # the first, and exactly one renewal


def test_a_session_is_renewed_before_it_expires(rest: tuple[FakeRest, FakeTime]) -> None:
    fake, time = rest
    fake.expires_in = 90  # renewed 60 s before expiry
    many(fake, invoices=3, relations=1)
    connector = rest_connector(BASE, time, page_size=1, calls_per_minute=2)  # 30 s apart
    fetch_all(connector)
    assert fake.calls["POST /v1/session"] >= 2
    assert "GET /v1/relation" not in fake.calls  # never the sparse list
    assert fake.refused == 0  # renewed in time: no request went out with a dead token


def test_a_429_waits_its_retry_after(rest: tuple[FakeRest, FakeTime]) -> None:
    fake, time = rest
    many(fake, invoices=2, relations=1)
    fake.throttle(7)
    pages = fetch_all(rest_connector(BASE, time, calls_per_minute=60_000))
    assert 7.0 in time.slept
    assert sum(len(p.invoices) for p in pages) == 2


def test_errors_carry_the_code_and_title_and_no_token(rest: tuple[FakeRest, FakeTime]) -> None:
    fake, time = rest
    fake.queued.append(
        httpx.Response(
            400,
            json={
                "type": "validation",
                "code": "MUTA_006",
                "title": "credDeb is required.",
                "message": "Jansen B.V. ...",
                "status": 400,
            },
        )
    )
    with pytest.raises(FatalConnectorError) as raised:
        fetch_all(rest_connector(BASE, time))
    text = str(raised.value)
    assert "MUTA_006: credDeb is required." in text
    assert API_TOKEN not in text and "Jansen" not in text


def test_a_bad_item_is_a_located_reject(rest: tuple[FakeRest, FakeTime]) -> None:
    fake, time = rest
    many(fake, invoices=2, relations=1)
    fake.mutations[2].date = date(9999, 12, 31)  # plus the term: beyond the calendar
    (page,) = fetch_all(rest_connector(BASE, time))
    assert [i.external_id for i in page.invoices] == ["1"]
    (reject,) = page.rejects
    assert (reject.ref, reject.invoice_id) == ("mutation 2", "2")


def test_a_missing_relation_keeps_its_invoices_open(
    rest: tuple[FakeRest, FakeTime], debsync_store: Store
) -> None:
    fake, time = rest
    many(fake, invoices=4, relations=2)
    assert engine_sync(rest_connector(BASE, time), debsync_store, time).counts.invoices_new == 4
    fake.relations[2]["name"] = "Renamed B.V."  # the list entry changes: the detail is fetched
    fake.gone.add(2)
    result = engine_sync(rest_connector(BASE, time), debsync_store, time)
    assert result.ok and result.counts.invoices_closed == 0
    assert {(r.kind, r.ref) for r in result.rejects} == {
        ("debtor", "relation 2"),
        ("invoice", "mutation 1"),
        ("invoice", "mutation 3"),
    }


# -- SOAP -----------------------------------------------------------------------------------


def test_a_soap_error_envelope_fails_the_sync_with_its_message(
    respx_mock: respx.MockRouter, debsync_store: Store
) -> None:
    fake = FakeSoap(posts=[OpenPost("F1", "DEB1", "Klant B.V.", date(2026, 10, 1), Decimal(5))])
    respx_mock.post(SOAP).mock(side_effect=fake)
    time = FakeTime()
    fake.failing.append(("E0042", "Deze functie is niet beschikbaar."))
    connector = EboekhoudenConnector(
        "eb", soap_settings(), ConnectorContext("eb", Path("."), http=HttpFactory())
    )
    result = engine_sync(connector, debsync_store, time)
    assert not result.ok
    assert result.error is not None
    assert "OpenSession failed: E0042: Deze functie is niet beschikbaar." in result.error
    assert FakeSoap().code_1 not in result.error


def test_settings_need_the_credentials_of_their_api() -> None:
    with pytest.raises(ValueError, match="token"):
        EboekhoudenSettings.model_validate({"source": "debsync"})
    with pytest.raises(ValueError, match="security_code_1"):
        EboekhoudenSettings.model_validate(
            {"api": "soap", "source": "debsync", "username": "u", "security_code_2": "x"}
        )
    with pytest.raises(ValueError, match="source"):
        EboekhoudenSettings.model_validate({"token": "t", "source": "debsync 2026!"})


# -- end to end, as a new user runs it ------------------------------------------------------


def debsync(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EB_TOKEN": API_TOKEN}
    return subprocess.run(
        [str(Path(sys.executable).parent / "debsync"), "-c", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_sync_status_and_run_end_to_end(tmp_path: Path) -> None:
    fake = FakeRest()
    many(fake, invoices=30, relations=8)
    fake.mutations[3].paid = Decimal("21.00")
    with FakeServer(fake) as server:
        config = tmp_path / "connectors.toml"
        config.write_text(
            f"""
[store]
url = "sqlite:///{tmp_path / "debsync.db"}"

[creditor]
name = "Voorbeeld Installatietechniek B.V."
iban = "NL91ABNA0417164300"
email = "debiteuren@voorbeeld-installatie.nl"

[connectors.eb]
type = "eboekhouden"
base_url = "{server.url}"
token = {{ env = "EB_TOKEN" }}
source = "debsync"
calls_per_minute = 60000

[actions.outbox-files]
type = "file"
directory = "outbox"
""",
            encoding="utf-8",
        )
        synced = debsync(config, "sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        status = debsync(config, "status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        text = json.dumps(report)
        assert API_TOKEN not in text and "sess-" not in text
        (instance,) = report["instances"]
        assert (instance["instance"], instance["type"]) == ("eb", "eboekhouden")
        assert (instance["open_invoices"], instance["last_run_status"]) == (30, "ok")
        assert instance["currencies"]["EUR"]["open_amount"] == "3609.00"  # 30 x 121 - 21
        fake.calls.clear()
        run = debsync(config, "run", "--once")
        assert run.returncode == 0, run.stdout + run.stderr
        assert fake.calls == {"POST /v1/session": 1, "GET /v1/mutation/invoice/outstanding": 1}
        assert any((tmp_path / "outbox").glob("*.eml"))
