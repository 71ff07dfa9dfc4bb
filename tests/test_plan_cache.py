"""The web console's plan cache (web/pages/plan_cache.py) over the seeded book of
tests/web_book.py: reused while the book is unchanged, brought up to date by re-planning only
the debtors a change reaches, and after every change equal to a plan made from scratch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from debsync.cli import app
from debsync.config import Config, load_config
from debsync.decisions import Plan
from debsync.facts import PauseKind
from debsync.pauses import start_pause
from debsync.planning import plan_from_store
from debsync.plugins import Plugins
from debsync.store import Store, open_store
from debsync.store.schema import events
from debsync.web.pages.plan_cache import PlanCache
from debsync.web.pages.plan_items import PlanView, load_plan
from web_book import HEADER, NOW, START, _row, seed

from csv_helpers import write


class Book:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.config: Config = load_config(path, Plugins())
        self.store: Store = open_store(self.config.store_url)
        self.calls: list[Any] = []  # the debtors or instances each planning was for (None: all)
        self.cache = PlanCache(self.planner)

    def planner(self, config: Config, store: Store, now: datetime, **narrow: Any) -> Plan:
        self.calls.append(narrow.get("debtors") or narrow.get("instances"))
        return plan_from_store(config, store, now, **narrow)

    def view(self, now: datetime = NOW) -> PlanView:
        """The cached view, checked against a plan made from scratch."""
        view = self.cache.get(self.config, self.store, now)
        assert view == load_plan(self.config, self.store, now)
        return view

    def pause(self, scope: str, target: str) -> None:
        start_pause(
            self.store,
            kind=PauseKind.DISPUTE,
            instance="books",
            scope=scope,  # type: ignore[arg-type]
            target=target,
            reason="test",
            author="anna",
            clock=lambda: NOW,
        )

    def sync(self, rows: list[list[str]], now: datetime = NOW) -> None:
        write(self.path.parent / "open-items.csv", [HEADER, *rows])
        result = CliRunner().invoke(
            app,
            ["--config", str(self.path), "sync"],
            env={"DEBSYNC_NOW": now.isoformat(), "DEBSYNC_CONFIG": None},
        )
        assert result.exit_code == 0, (result.output, result.exception)


@pytest.fixture
def book(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Book]:
    opened = Book(seed(tmp_path, tmp_path_factory.getbasetemp() / "web-book"))
    yield opened
    opened.store.dispose()


DUE = START - timedelta(days=1)
D1 = _row("D1", "Bakkerij De Gouden Korrel B.V.", "Zakelijk", "info@korrel.example.nl",
          "F-001", DUE, "1.210,00")  # fmt: skip
D2 = _row("D2", "Oak & Ivy Consulting Ltd", "Zakelijk", "accounts@oakivy.example.com",
          "F-003", DUE + timedelta(days=1), "350,00")  # fmt: skip
D3 = _row("D3", "J.P. de Vries", "Particulier", "", "F-004", DUE, "89,95")


def debtors(view: PlanView) -> list[str]:
    return sorted(i.debtor_id for i in view.items)


def test_the_plan_is_reused_while_the_book_is_unchanged(book: Book) -> None:
    first = book.view()
    later = NOW + timedelta(minutes=5)
    book.sync([D1, D2, D3], later)  # nothing new: a run, no events; the book is fresh again
    assert book.cache.get(book.config, book.store, later) is first
    assert book.cache.get(book.config, book.store, later + timedelta(hours=3)) is first
    assert book.calls == [None]


def test_a_change_replans_only_the_debtors_it_reaches(book: Book) -> None:
    assert "D2" in debtors(book.view())
    book.pause("debtor", "D2")
    assert "D2" not in debtors(book.view())
    book.sync([D1, D3])  # D2's invoice paid: it leaves the export
    book.view()
    assert book.calls == [None, {("books", "D2")}, {("books", "D2")}]


def test_an_invoice_moved_to_another_debtor_replans_both(book: Book) -> None:
    book.view()
    book.sync([D1, [*D3[:9], *D2[9:]], D3])  # F-003 now belongs to D3
    book.view()
    assert book.calls[-1] == {("books", "D2"), ("books", "D3")}


def test_an_instance_wide_change_or_staleness_replans_the_instance_a_new_day_all(
    book: Book,
) -> None:
    book.view()
    book.pause("instance", "books")
    assert all(i.queued for i in book.view().items)
    book.view(NOW + timedelta(hours=1))  # the last sync is now older than 24 hours
    book.view(NOW + timedelta(days=1))
    assert book.calls == [None, {"books"}, {"books"}, None]


def test_an_event_committed_late_below_the_newest_is_still_seen(book: Book) -> None:
    """Concurrent writers on PostgreSQL commit ids out of order: an event may appear below
    the newest id the cache saw. Simulated on SQLite by giving the events their ids."""
    book.view()
    with book.store.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(events.c.id))).scalar_one()

    def note(id_: int, debtor: str) -> None:
        with book.store.engine.begin() as conn:
            conn.execute(
                sa.insert(events).values(
                    id=id_, at=NOW, instance="books", debtor_id=debtor, kind="note", data={}
                )
            )

    note(newest + 10, "D1")
    book.view()
    note(newest + 5, "D2")  # committed after the newer one
    book.view()
    assert book.calls == [None, {("books", "D1")}, {("books", "D2")}]


def test_a_renamed_debtor_is_shown_by_its_new_name(book: Book) -> None:
    book.view()
    book.sync([D1, [D2[0], "Oak & Ivy Holding Ltd", *D2[2:]], D3])
    (item,) = [i for i in book.view().items if i.debtor_id == "D2"]
    assert item.debtor_name == "Oak & Ivy Holding Ltd"
    assert book.calls[-1] == {("books", "D2")}


def test_the_servers_keep_the_plan_made_before_anyone_asks(book: Book) -> None:
    """``keep_warm`` (beside ``debsync web`` and ``debsync run``) makes the plan at start and
    brings it up to date after a change, so a page view finds it made."""
    import asyncio

    from debsync.web.app import build_web_app
    from debsync.web.warmup import keep_warm

    console = build_web_app(book.config, book.store, Plugins(), clock=lambda: NOW)
    console.state.work_plan_cache = book.cache

    async def two_looks() -> None:
        stop = asyncio.Event()
        warm = asyncio.create_task(keep_warm(console, stop, every=0.05))
        while len(book.calls) < 1:
            await asyncio.sleep(0.01)
        book.pause("debtor", "D2")
        while len(book.calls) < 2:
            await asyncio.sleep(0.01)
        stop.set()
        await warm

    asyncio.run(two_looks())
    assert book.calls == [None, {("books", "D2")}]
    assert "D2" not in debtors(book.view())
    assert len(book.calls) == 2  # the view found the plan made
