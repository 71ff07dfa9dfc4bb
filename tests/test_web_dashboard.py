"""The dashboard's figures against a small book whose every figure is worked out by hand,
on SQLite and PostgreSQL, then the page in Dutch over real HTTP, and in a real browser."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from debsync.config import Config, ConnectorInstance
from debsync.connectors.csv import CsvConnector, CsvSettings
from debsync.facts import PauseKind
from debsync.pauses import start_pause
from debsync.store import Store
from debsync.store.reports import instance_status
from debsync.store.schema import connector_state, debtors, invoices, payments
from debsync.web.figures import figures, month_ends

from conftest import FIXED_NOW, FrozenClock

TODAY = date(2026, 11, 22)  # FIXED_NOW in Amsterdam
pytest_plugins = ["browser"]  # the web_console and browser_page fixtures
PRINT = hashlib.blake2b(b"web", digest_size=16).digest()


def _debtor(ext: str, kind: str = "business", **contact: object) -> dict[str, object]:
    return {
        "instance": "books",
        "external_id": ext,
        "name": f"Debiteur {ext}",
        "kind": kind,
        "emails": contact.get("emails", []),
        "phones": contact.get("phones", []),
        "language": "nl",
        "address": contact.get("address"),
        "fingerprint": PRINT,
        "created_at": FIXED_NOW,
        "updated_at": FIXED_NOW,
    }


def _invoice(ext: str, debtor: str, issued: date, due: date, total: int, open_: int) -> dict:
    return {
        "instance": "books",
        "external_id": ext,
        "number": ext,
        "debtor_id": debtor,
        "issue_date": issued,
        "due_date": due,
        "currency": "EUR",
        "total_minor": total,
        "open_minor": open_,
        "direct_debit": False,
        "has_document": False,
        "state": "open" if open_ else "closed",
        "fingerprint": PRINT,
        "created_at": FIXED_NOW,
        "updated_at": FIXED_NOW,
    }


def seed(store: Store, clock: FrozenClock) -> None:
    """The book, as of 22-11-2026:

    ====  ======  ==========  ==========  =======  ======  =====================
    inv   debtor  issued      due         total    open    notes
    ====  ======  ==========  ==========  =======  ======  =====================
    F1    D1      01-11-2026  01-12-2026  1000,00  1000,00 due in week 2
    F2    D1      01-09-2026  01-10-2026   500,00   200,00 300,00 paid 15-10
    F3    D2      01-06-2026  01-07-2026   250,00   250,00 D2: no contact at all
    F4    D3      10-11-2026  24-11-2026   123,45   123,45 D3: unknown kind
    F5    D1      20-10-2026  19-11-2026   400,00   400,00 promised for 10-12
    F6    D1      15-08-2026  14-09-2026   800,00     0,00 paid 10-09
    U1    D1      01-11-2026  02-11-2026    50,00    50,00 in US dollars
    ====  ======  ==========  ==========  =======  ======  =====================
    """
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(debtors),
            [
                _debtor("D1", emails=["boekhouding@example.nl"]),
                _debtor("D2"),
                _debtor("D3", kind="unknown", phones=["+31612345678"]),
            ],
        )
        conn.execute(
            sa.insert(invoices),
            [
                _invoice("F1", "D1", date(2026, 11, 1), date(2026, 12, 1), 100000, 100000),
                _invoice("F2", "D1", date(2026, 9, 1), date(2026, 10, 1), 50000, 20000),
                _invoice("F3", "D2", date(2026, 6, 1), date(2026, 7, 1), 25000, 25000),
                _invoice("F4", "D3", date(2026, 11, 10), date(2026, 11, 24), 12345, 12345),
                _invoice("F5", "D1", date(2026, 10, 20), date(2026, 11, 19), 40000, 40000),
                _invoice("F6", "D1", date(2026, 8, 15), date(2026, 9, 14), 80000, 0),
                _invoice("U1", "D1", date(2026, 11, 1), date(2026, 11, 2), 5000, 5000)
                | {"currency": "USD"},
            ],
        )
        conn.execute(
            sa.insert(payments),
            [
                {
                    "instance": "books",
                    "external_id": ext,
                    "invoice_id": inv,
                    "paid_on": on,
                    "currency": "EUR",
                    "amount_minor": amount,
                    "source": "connector",
                    "recorded_at": FIXED_NOW,
                }
                for ext, inv, on, amount in (
                    ("P1", "F2", date(2026, 10, 15), 30000),
                    ("P2", "F6", date(2026, 9, 10), 80000),
                )
            ],
        )
        conn.execute(
            sa.insert(connector_state).values(
                instance="books", type="csv", last_success_at=FIXED_NOW
            )
        )
    start_pause(
        store,
        kind=PauseKind.PROMISE,
        instance="books",
        scope="invoice",
        target="F5",
        reason="belt terug: betaalt 10 december",
        author="anna",
        until=date(2026, 12, 10),
        clock=clock,
    )


@pytest.fixture
def book(store: Store, clock: FrozenClock) -> Store:
    seed(store, clock)
    return store


def test_month_ends_are_the_last_days_of_the_previous_months_then_today() -> None:
    ends = month_ends(TODAY)
    assert len(ends) == 12
    assert ends[0] == date(2025, 12, 31) and ends[-3:] == [
        date(2026, 9, 30),
        date(2026, 10, 31),
        TODAY,
    ]


def test_figures_of_the_known_book(book: Store) -> None:
    (status,) = instance_status(book, {"books": "csv"}, TODAY)
    totals = status.totals["EUR"]
    assert totals.open_amount == Decimal("1973.45")
    assert totals.overdue_amount == Decimal("850.00")
    assert totals.aging == {
        "not_due": Decimal("1123.45"),
        "0-30": Decimal("400.00"),
        "31-60": Decimal("200.00"),
        "61-90": Decimal("0.00"),
        ">90": Decimal("250.00"),
    }
    found = figures(book, status, TODAY)
    dso = {p.on: p for p in found.dso}
    # today: 1973,45 open over 2023,45 invoiced since 24-08 (F1, F2, F4, F5), × 90
    assert (dso[TODAY].receivable, dso[TODAY].sales) == (Decimal("1973.45"), Decimal("2023.45"))
    assert dso[TODAY].days == Decimal("87.8")
    # 31-10: F2's 200 (300 of it paid on 15-10), F3 and F5 open; F5, F2 and F6 invoiced
    assert dso[date(2026, 10, 31)].receivable == Decimal("850.00")
    assert dso[date(2026, 10, 31)].days == Decimal("45.0")
    # 30-09: F2 whole, F3; F6 was paid on 10-09; F2 and F6 invoiced since 02-07
    assert dso[date(2026, 9, 30)].receivable == Decimal("750.00")
    assert dso[date(2026, 9, 30)].days == Decimal("51.9")
    # 31-12-2025: nothing invoiced yet, so no DSO
    assert dso[date(2025, 12, 31)].days is None
    weeks = [(w.start, w.due, w.promised) for w in found.forecast]
    assert len(weeks) == 8 and weeks[:4] == [
        (date(2026, 11, 22), Decimal("123.45"), Decimal("0.00")),  # F4 due on 24-11
        (date(2026, 11, 29), Decimal("1000.00"), Decimal("0.00")),  # F1 due on 01-12
        (date(2026, 12, 6), Decimal("0.00"), Decimal("400.00")),  # F5 promised for 10-12
        (date(2026, 12, 13), Decimal("0.00"), Decimal("0.00")),
    ]
    assert found.without_contact == 1  # D2
    assert status.unknown_kind == ["D3"]


def test_a_disputed_invoice_is_not_expected(book: Store, clock: FrozenClock) -> None:
    start_pause(
        book,
        kind=PauseKind.DISPUTE,
        instance="books",
        scope="debtor",
        target="D1",
        reason="levering onvolledig",
        author="anna",
        clock=clock,
    )
    (status,) = instance_status(book, {"books": "csv"}, TODAY)
    weeks = figures(book, status, TODAY).forecast
    assert weeks[1].due == Decimal("0.00")  # F1 is D1's and in dispute
    assert weeks[2].promised == Decimal("400.00")  # the promise on F5 still stands


def _config(tmp_path: Path) -> Config:
    books = ConnectorInstance("books", "csv", CsvConnector, CsvSettings(path=tmp_path / "x.csv"))
    return Config(path=tmp_path / "connectors.toml", store_url="", connectors={"books": books})


def test_the_page_in_dutch(sqlite_store: Store, tmp_path: Path, web_console, clock) -> None:
    seed(sqlite_store, clock)
    served = web_console(_config(tmp_path), sqlite_store, clock, users={"kim": "viewer"})
    with httpx.Client(base_url=served.url) as client:
        login = client.get("/login")
        token = login.text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/login", data={"csrf": token, "name": "kim", "password": served.password})
        page = client.get("/")
        start_pause(
            sqlite_store,
            kind=PauseKind.DISPUTE,
            instance="books",
            scope="invoice",
            target="F1",
            reason="levering onvolledig",
            author="kim",
            clock=clock,
        )
        after = client.get("/").text.replace("\xa0", " ")
    assert page.status_code == 200
    html = page.text.replace("\xa0", " ")  # babel puts a no-break space after the €
    assert '<dd id="open-amount">€ 1.973,45</dd>' in html
    assert '<dd id="overdue-amount">€ 850,00</dd>' in html
    assert '<dd id="dso">87,8</dd>' in html
    assert "Ouderdom op 22-11-2026" in html
    assert '<td class="num">€ 1.123,45</td>' in html  # not yet due, in the table
    assert "22-11-2026 – 28-11-2026" in html  # the first forecast week
    assert "1 debiteur(en) met open posten zonder e-mailadres" in html
    assert "1 debiteur(en) met open posten van onbekende soort" in html
    assert "Daarnaast in USD: US$ 50,00 open, waarvan US$ 50,00 vervallen" in html
    week_two = r'29-11-2026 – 05-12-2026</th><td class="num">€ ([\d.,]+)</td>'
    assert re.search(week_two, html).group(1) == "1.000,00"  # F1 falls due
    assert re.search(week_two, after).group(1) == "0,00"  # not while it is disputed
    assert '<title id="aging-title">' in html and '<desc id="aging-desc">' in html


def test_a_browser_logs_in_and_sees_the_dashboard(
    sqlite_store: Store, tmp_path: Path, web_console, browser_page, clock
) -> None:
    seed(sqlite_store, clock)
    served = web_console(_config(tmp_path), sqlite_store, clock, users={"kim": "viewer"})
    served.log_in(browser_page, "kim")
    assert browser_page.locator("#open-amount").inner_text() == "€\xa01.973,45"
    assert browser_page.get_by_role("img", name="Ouderdom op 22-11-2026").is_visible()
    browser_page.keyboard.press("Tab")  # the first stop is the skip link, then it works
    assert browser_page.evaluate("document.activeElement.textContent") == "Naar de inhoud"
    browser_page.keyboard.press("Enter")
    assert browser_page.evaluate("document.activeElement.id") == "main"
    browser_page.set_viewport_size({"width": 768, "height": 1024})  # a tablet, upright
    assert browser_page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    with browser_page.expect_navigation():  # the page reloads in English: wait for it
        browser_page.get_by_role("link", name="English").click()
    assert browser_page.get_by_role("heading", name="Aging as of 22 Nov 2026").is_visible()
    assert browser_page.locator("#open-amount").inner_text() == "€1,973.45"
