"""The Exact Online connector against the stateful fake: the conformance kit for one and for
fifty divisions, and the proofs the issue asks for (split receivables, payables left out,
deletions, direct debit, a division resync, rate limits, no retried 4xx, documents, notes,
call counts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import respx

from debsync.config import ConnectorInstance
from debsync.connectors.base import ConnectorContext, Page, Previous, SyncResult
from debsync.connectors.exact import ExactConnector, ExactSettings
from debsync.connectors.http import HttpFactory
from debsync.errors import FatalConnectorError
from debsync.model import DebtorKind, Invoice, Money
from debsync.store import Store
from debsync.sync import SyncEngine
from debsync.testing import ConnectorChecks, ConnectorHarness, SampleBook
from debsync.testing.connectors import fetch_all

from fake_exact import FakeExact, MemoryVault

HOST = "https://exact.test"


class Clock:
    """One clock for the fake, the token rules and the rate limiters; sleeping advances it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, 10, tzinfo=UTC).timestamp()
        self.asked: list[float] = []

    def __call__(self) -> float:
        return self.now

    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.now += seconds


def make_connector(
    fake: FakeExact, clock: Clock, vault: MemoryVault, **settings: Any
) -> ExactConnector:
    validated = ExactSettings.model_validate(
        {
            "client_id": fake.oauth.client_id,
            "client_secret": fake.oauth.client_secret,
            "base_url": HOST,
            "divisions": sorted(fake.divisions),
            **settings,
        }
    )
    http = HttpFactory(attempts=2, clock=clock.moment, sleep=clock.sleep)
    context = ConnectorContext("ex", Path("."), clock=clock.moment, http=http, tokens=vault)
    return ExactConnector("ex", validated, context)


def seeded_vault(fake: FakeExact) -> MemoryVault:
    pair = fake.oauth.issue()
    now = fake.clock()
    return MemoryVault(
        {
            "access_token": pair["access_token"],
            "refresh_token": pair["refresh_token"],
            "issued_at": now,
            "expires_at": now + float(pair["expires_in"]),
        }
    )


def seed_book(fake: FakeExact, book: SampleBook, divisions: list[int]) -> None:
    """Each debtor of the sample book in its own division (round robin)."""
    where: dict[str, tuple[int, str]] = {}
    for index, debtor in enumerate(book.debtors):
        division = divisions[index % len(divisions)]
        address = debtor.address
        account = fake.add_account(
            division,
            debtor.name,
            debtor.external_id.removeprefix("D"),
            Email=debtor.emails[0],
            Phone=debtor.phones[0],
            AddressLine1=address.lines[0] if address else None,
            Postcode=address.postcode if address else None,
            City=address.city if address else None,
            Country="NL",
            Language="EN" if debtor.language.value == "en" else "NL",
            ChamberOfCommerce=debtor.kvk,
            VATNumber=debtor.vat,
        )
        where[debtor.external_id] = (division, account)
    for invoice in book.invoices:
        division, account = where[invoice.debtor_id]
        fake.add_receivable(
            division,
            account,
            invoice.number,
            amount=invoice.total.amount,
            open_amount=invoice.open_amount.amount,
            invoice_date=invoice.issue_date,
            due_date=invoice.due_date,
            currency=invoice.currency,
        )


class ExactHarness(ConnectorHarness):
    def __init__(self, router: respx.MockRouter, divisions: list[int]) -> None:
        self.clock = Clock()
        self.fake = FakeExact(divisions, clock=self.clock, sync_page=2, crud_page=2)
        self.vault = seeded_vault(self.fake)
        router.route(host="exact.test").mock(side_effect=self.fake)

    def connector(self) -> ExactConnector:
        return make_connector(self.fake, self.clock, self.vault)

    def seed(self, book: SampleBook) -> None:
        seed_book(self.fake, book, sorted(self.fake.divisions))

    def _where(self, number: str) -> tuple[int, str]:
        for code in self.fake.divisions:
            try:
                return code, self.fake.entry(code, number)
            except StopIteration:
                continue
        raise KeyError(number)

    def set_open_amount(self, number: str, amount: Money) -> None:
        division, entry = self._where(number)
        left = sum(t["AmountFC"] for t in self.fake.open_terms(division, entry))
        self.fake.pay(division, entry, left - amount.amount)

    def remove(self, number: str) -> None:
        division, entry = self._where(number)
        left = sum(t["AmountFC"] for t in self.fake.open_terms(division, entry))
        self.fake.pay(division, entry, left)

    def fail_next(self, kind: Literal["transient", "fatal"]) -> None:
        self.fake.failing = [503, 503] if kind == "transient" else [403]


class TestExactConnector(ConnectorChecks):
    @pytest.fixture
    def harness(self, respx_mock: respx.MockRouter) -> ConnectorHarness:
        return ExactHarness(respx_mock, [3001])


class TestExactFiftyDivisions(ConnectorChecks):
    """The sample book's three debtors in three of fifty divisions, the others empty."""

    @pytest.fixture
    def harness(self, respx_mock: respx.MockRouter) -> ConnectorHarness:
        return ExactHarness(respx_mock, list(range(4001, 4051)))


# -- proofs ---------------------------------------------------------------------------------


class Book:
    """A fake with one division, its connector and helpers to fill it."""

    def __init__(self, router: respx.MockRouter, divisions: list[int] | None = None, **kw: Any):
        self.clock = Clock()
        self.fake = FakeExact(divisions or [3001], clock=self.clock, **kw)
        self.vault = seeded_vault(self.fake)
        router.route(host="exact.test").mock(side_effect=self.fake)

    def connector(self, **settings: Any) -> ExactConnector:
        return make_connector(self.fake, self.clock, self.vault, **settings)

    def account(self, division: int = 3001, **fields: Any) -> str:
        base = {"Email": "info@korrel.example.nl", "ChamberOfCommerce": "87654321"}
        return self.fake.add_account(
            division, "Bakkerij De Gouden Korrel B.V.", 1068, **base | fields
        )

    def receivable(self, account: str, number: int, division: int = 3001, **fields: Any) -> str:
        dates = {"invoice_date": date(2026, 9, 1), "due_date": date(2026, 10, 1)}
        return self.fake.add_receivable(
            division, account, number, **{"amount": "121.00", **dates, **fields}
        )


@pytest.fixture
def book(respx_mock: respx.MockRouter) -> Book:
    return Book(respx_mock)


def invoices(pages: list[Page]) -> dict[str, Invoice]:
    return {i.number: i for page in pages for i in page.invoices}


def calls(fake: FakeExact, route: str = "") -> int:
    return sum(1 for _, call in fake.calls if route in call)


def test_a_split_receivable_is_one_invoice_and_payables_are_left_out(book: Book) -> None:
    book.fake.sync_page = 1  # the parts of one entry arrive on different pages
    owner = book.account()
    book.receivable(owner, 24700123, amount="1210.00", open_amount="410.50")
    book.receivable(owner, 24700124, line_type=22)  # a payable in the same sync endpoint
    found = invoices(fetch_all(book.connector()))
    assert list(found) == ["24700123"]
    invoice = found["24700123"]
    assert invoice.open_amount == Money.of(Decimal("410.50"))
    assert invoice.total == Money.of(Decimal("1210.00"))
    assert invoice.due_date == date(2026, 10, 1) and invoice.issue_date == date(2026, 9, 1)
    assert invoice.external_id.startswith("3001:")


def test_debtor_from_account_and_main_contact_kind_inferred_and_overridden(book: Book) -> None:
    business = book.account(Language="EN")
    book.fake.add_contact(3001, business, Email="piet@korrel.example.nl", Mobile="0612345678")
    person = book.fake.add_account(3001, "J.P. de Vries", 2001, Email="jp@example.nl")
    club = book.fake.add_account(3001, "Voetbalvereniging Oranje", 2002)
    for owner, number in ((business, 1), (person, 2), (club, 3)):
        book.receivable(owner, number)
    pages = fetch_all(book.connector(debtor_kinds={"2002": "business"}))
    debtors = {d.name: d for page in pages for d in page.debtors}
    korrel = debtors["Bakkerij De Gouden Korrel B.V."]
    assert korrel.emails == ("info@korrel.example.nl", "piet@korrel.example.nl")
    assert korrel.phones == ("+31612345678",)
    assert (korrel.kind, korrel.language.value, korrel.kvk) == (
        DebtorKind.BUSINESS,
        "en",
        "87654321",
    )
    assert debtors["J.P. de Vries"].kind == DebtorKind.CONSUMER
    assert debtors["Voetbalvereniging Oranje"].kind == DebtorKind.BUSINESS


def test_direct_debit_is_marked(book: Book) -> None:
    owner = book.account()
    book.receivable(owner, 10, PaymentMethod="I")
    book.receivable(owner, 11)
    found = invoices(fetch_all(book.connector()))
    assert (found["10"].direct_debit, found["11"].direct_debit) == (True, False)


def test_incremental_changes_deletions_and_four_calls_when_nothing_changed(book: Book) -> None:
    owner = book.account()
    kept = book.receivable(owner, 1, amount="500.00")
    gone = book.receivable(owner, 2)
    pages = fetch_all(book.connector())
    cursor = pages[-1].cursor
    book.fake.calls.clear()
    pages = fetch_all(book.connector(), cursor)
    assert calls(book.fake) == 4 and not invoices(pages)
    book.fake.pay(3001, kept, Decimal("200.00"))
    book.fake.delete_entry(3001, gone)
    book.fake.update_account(3001, owner, Email="nieuw@korrel.example.nl")
    pages = fetch_all(book.connector(), pages[-1].cursor)
    assert invoices(pages)["1"].open_amount == Money.of(Decimal("300.00"))
    assert [c for p in pages for c in p.closed] == [f"3001:{gone}"]
    (debtor,) = [d for p in pages for d in p.debtors]
    assert debtor.emails == ("nieuw@korrel.example.nl",)


def test_a_new_invoice_of_a_known_account_brings_its_debtor(book: Book) -> None:
    first = book.account()
    other = book.fake.add_account(
        3001, "Oak & Ivy Consulting B.V.", 3003, VATNumber="NL862745162B01"
    )
    book.receivable(first, 1)
    cursor = fetch_all(book.connector())[-1].cursor
    book.receivable(other, 2)  # the account is older than the cursor: not in its changes
    pages = fetch_all(book.connector(), cursor)
    assert [d.name for p in pages for d in p.debtors] == ["Oak & Ivy Consulting B.V."]
    assert "2" in invoices(pages)


def test_a_division_resync_signal_reloads_that_division(respx_mock: respx.MockRouter) -> None:
    book = Book(respx_mock, [3001, 3002])
    for division in (3001, 3002):
        owner = book.account(division)
        book.receivable(owner, division * 10, division=division)
        book.receivable(owner, division * 10 + 1, division=division)
    settings = {"division_check_minutes": 0}
    cursor = fetch_all(book.connector(**settings))[-1].cursor
    gone = book.fake.entry(3001, 30011)
    book.fake.delete_entry(3001, gone)
    book.fake.divisions[3001].deleted.clear()  # the regenerated log no longer has it
    book.fake.regenerate(3001)
    book.fake.calls.clear()
    pages = fetch_all(book.connector(**settings), cursor)
    assert sorted(invoices(pages)) == ["30010"]  # 3001 in full; 3002 unchanged
    assert [c for p in pages for c in p.closed] == [f"3001:{gone}"]
    assert calls(book.fake, "/api/v1/3002/") == 4


def test_a_429_waits_until_the_minutely_reset(book: Book) -> None:
    owner = book.account()
    book.receivable(owner, 1)
    book.fake.failing = [429]
    found = invoices(fetch_all(book.connector()))
    assert "1" in found
    (asked,) = book.clock.asked
    start = datetime(2026, 11, 23, 9, 0, 10, tzinfo=UTC).timestamp()
    assert asked == pytest.approx(start // 60 * 60 + 60 + 1.0 - start)


def test_a_400_is_not_retried_and_says_why(book: Book) -> None:
    owner = book.account()
    book.receivable(owner, 1)
    book.fake.failing = [400]
    with pytest.raises(FatalConnectorError) as raised:
        fetch_all(book.connector())
    assert calls(book.fake) == 1  # system/Divisions, refused once and not asked again
    assert "failure on purpose" in str(raised.value)
    assert book.fake.oauth.client_secret not in str(raised.value)


def test_never_more_than_sixty_calls_a_minute(respx_mock: respx.MockRouter) -> None:
    book = Book(respx_mock, sync_page=5)
    owner = book.account()
    for n in range(400):
        book.receivable(owner, n)
    found = invoices(fetch_all(book.connector()))
    assert len(found) == 400
    assert calls(book.fake) > 60 and book.fake.max_per_minute[3001] <= 60
    assert book.clock.asked  # it paced


def test_a_used_up_daily_budget_skips_that_division_only(respx_mock: respx.MockRouter) -> None:
    book = Book(respx_mock, [3001, 3002], budgets={3002: 3})
    for division in (3001, 3002):
        book.receivable(book.account(division), division, division=division)
    pages = fetch_all(book.connector())
    assert sorted(invoices(pages)) == ["3001"]
    (reject,) = [r for p in pages for r in p.rejects]
    assert reject.ref == "division 3002" and "daily API budget" in reject.reason
    cursor: Any = pages[-1].cursor
    assert cursor["divisions"]["3002"]["paused_until"]
    book.fake.calls.clear()
    fetch_all(book.connector(), pages[-1].cursor)  # before the reset: not even asked
    assert calls(book.fake, "/api/v1/3002/") == 0


def test_the_invoice_pdf_and_a_note(book: Book) -> None:
    owner = book.account()
    entry = book.receivable(owner, 7)
    book.fake.attach_pdf(3001, entry, b"%PDF-1.4 factuur 7")
    (invoice,) = invoices(fetch_all(book.connector())).values()
    assert asyncio.run(book.connector().fetch_document(invoice)) == b"%PDF-1.4 factuur 7"
    (attachment,) = book.fake.divisions[3001].attachments.values()
    attachment["Url"] = "https://elsewhere.example/factuur.pdf"  # the token never goes there
    assert asyncio.run(book.connector().fetch_document(invoice)) is None
    asyncio.run(book.connector().record_note(invoice, "Herinnering verstuurd per e-mail"))
    assert book.fake.divisions[3001].notes == []  # write_back is off by default
    asyncio.run(book.connector(write_back=True).record_note(invoice, "Herinnering verstuurd"))
    (note,) = book.fake.divisions[3001].notes
    assert note["Account"] == owner and note["Notes"] == "Herinnering verstuurd"


def test_all_divisions_from_system_divisions(respx_mock: respx.MockRouter) -> None:
    book = Book(respx_mock, [3001, 3002, 3003])
    for division in (3001, 3003):
        book.receivable(book.account(division), division, division=division)
    pages = fetch_all(book.connector(divisions="all"))
    assert sorted(invoices(pages)) == ["3001", "3003"]
    assert calls(book.fake, "current/Me") == 1
    listed = asyncio.run(book.connector().list_administrations())
    assert listed == [(str(d), f"Administratie {d}") for d in (3001, 3002, 3003)]


def test_a_401_refreshes_once_and_tries_again(book: Book) -> None:
    book.receivable(book.account(), 1)
    assert book.vault.tokens is not None
    book.vault.tokens["expires_at"] = book.clock.now + 3600  # the vault thinks it still valid
    book.clock.now += 610  # the fake's access token expired after 600 s
    found = invoices(fetch_all(book.connector()))
    assert "1" in found
    assert book.fake.oauth.refreshes == 1
    assert [status for _, status in book.fake.answered].count(401) == 1


def test_a_division_no_longer_reached_is_reported_and_kept(respx_mock: respx.MockRouter) -> None:
    book = Book(respx_mock, [3001, 3002])
    for division in (3001, 3002):
        book.receivable(book.account(division), division, division=division)
    cursor = fetch_all(book.connector(divisions="all"))[-1].cursor
    del book.fake.divisions[3002]  # access withdrawn at a new consent
    for check in (0, 60):  # read from system/Divisions, then remembered
        pages = fetch_all(book.connector(divisions="all", division_check_minutes=check), cursor)
        (reject,) = [r for p in pages for r in p.rejects]
        assert reject.ref == "division 3002" and "kept as last synced" in reject.reason
        assert not [c for p in pages for c in p.closed]
        cursor = pages[-1].cursor


def test_the_fake_blocks_an_endpoint_after_ten_errors_an_hour(book: Book) -> None:
    """What the connector's no-retry rule for 4xx protects against."""
    token = book.vault.tokens["access_token"] if book.vault.tokens else ""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    url = f"{HOST}/api/v1/3001/crm/Accounts?$select=ID"  # no $filter: mandatory filtering
    answers = [book.fake(httpx.Request("GET", url, headers=headers)) for _ in range(11)]
    assert [a.status_code for a in answers] == [400] * 10 + [403]
    assert "Blocked" in answers[-1].json()["error"]["message"]["value"]
    book.clock.now += 3601  # an hour later the endpoint answers again (with a new token)
    headers["Authorization"] = f"Bearer {book.fake.oauth.issue()['access_token']}"
    assert book.fake(httpx.Request("GET", url, headers=headers)).status_code == 400


def test_an_invoice_whose_account_exact_does_not_return_is_a_located_reject(book: Book) -> None:
    owner = book.account()
    entry = book.receivable(owner, 1)
    book.receivable(book.account(), 2)
    del book.fake.divisions[3001].accounts[owner]
    pages = fetch_all(book.connector())
    (reject,) = [r for p in pages for r in p.rejects]
    assert reject.invoice_id == f"3001:{entry}" and owner in reject.reason
    assert list(invoices(pages)) == ["2"]


def test_a_changed_main_contact_costs_one_call_for_its_account(book: Book) -> None:
    owner = book.account()
    contact = book.fake.add_contact(3001, owner, Email="piet@korrel.example.nl")
    book.receivable(owner, 1)
    cursor = fetch_all(book.connector())[-1].cursor
    book.fake.update_contact(3001, contact, Email="anna@korrel.example.nl")
    book.fake.calls.clear()
    pages = fetch_all(book.connector(), cursor)
    (debtor,) = [d for p in pages for d in p.debtors]
    assert debtor.emails == ("info@korrel.example.nl", "anna@korrel.example.nl")
    assert calls(book.fake) == 4 + 1 and calls(book.fake, "/crm/Accounts") == 1


def test_no_division_reached_closes_nothing(respx_mock: respx.MockRouter) -> None:
    book = Book(respx_mock, [3001])
    book.receivable(book.account(), 1)
    connector = book.connector(divisions=[3009])  # one the authorisation does not reach
    connector.previous = Previous(invoices={"3001:earlier": b"fingerprint"})
    (page,) = fetch_all(connector)
    assert page.snapshot_complete and page.unchanged_invoices == ["3001:earlier"]
    assert [r.ref for r in page.rejects] == ["division 3009"]


def test_syncs_through_the_engine_on_both_stores(
    respx_mock: respx.MockRouter, store: Store
) -> None:
    """The cursor (every division's open entries) round-trips through SQLite's and
    PostgreSQL's JSON columns: a second run is incremental and writes only the changes."""
    book = Book(respx_mock, [3001, 3002])
    entries = {}
    for division in (3001, 3002):
        owner = book.account(division)
        entries[division] = book.receivable(owner, division, division=division, amount="500.00")
        book.receivable(owner, division + 1, division=division)

    def run() -> SyncResult:
        connector = book.connector()
        instance = ConnectorInstance("ex", "exact", ExactConnector, connector.settings)
        return asyncio.run(SyncEngine(store).run(instance, connector, allow_mass_close=True))

    first = run()
    assert first.ok and first.snapshot and first.counts.invoices_new == 4
    book.fake.pay(3001, entries[3001], Decimal("200.00"))
    book.fake.delete_entry(3002, book.fake.entry(3002, 3003))
    second = run()
    assert second.ok and not second.snapshot, second.error
    assert (second.counts.partial_payments, second.counts.invoices_closed) == (1, 1)
    assert run().counts.writes == 0
