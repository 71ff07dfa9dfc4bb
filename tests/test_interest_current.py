"""Interest current and visible before sending: the shipped 2026-07-01 rates, the hold on steps
that claim interest when the table does not cover the day, and the one warning before anything
is sent."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from debsync import law
from debsync.cli import app
from debsync.clock import AMSTERDAM, local_date, system_clock
from debsync.config import LawSettings
from debsync.decisions import PlannedAction
from debsync.facts import DebtorFacts, InstanceFacts, InvoiceFacts, Snapshot, StepSent
from debsync.formatting import money
from debsync.law import RateUnknownError
from debsync.model import DebtorKind, Language
from debsync.outbox.review import approve
from debsync.outbox.table import enqueue
from debsync.planning import plan_from_store
from debsync.policy import Policy, Step
from debsync.scheduler import plan
from debsync.store import Store, open_store
from debsync.store.schema import ActionState, outbox

from books import Book
from fakes import RecordingAction, invoice

REPO = Path(__file__).resolve().parents[1]


def test_the_second_half_of_2026_is_shipped() -> None:
    table = law.load_rate_table()
    assert table.last_known() == date(2026, 12, 31)
    consumer = table.row_for(date(2026, 12, 2), commercial=False)
    business = table.row_for(date(2026, 12, 2), commercial=True)
    assert (consumer.valid_from, consumer.rate) == (date(2026, 7, 1), Decimal("0.04"))
    assert (business.valid_from, business.rate) == (date(2026, 7, 1), Decimal("0.104"))
    # 6:120 lid 2 BW: the ECB main refinancing rate (2.40 % from 17 June 2026) + 8 points
    assert "2.40%" in business.source and "+ 8 pp" in business.source
    # what could not be checked against a primary publication says so in the table itself
    assert "FLAG" in consumer.source and "FLAG" in business.source


# -- the hold -----------------------------------------------------------------------------------

PAST_TABLE = date(2027, 2, 1)  # the shipped table ends 2026-12-31
DUE = date(2026, 12, 1)
STEPS = (
    Step(name="reminder", channels=("email",), days_after_due=1),
    Step(name="aanmaning", channels=("email",), days_after_due=14, claim_interest=True),
)


def snapshot(debtors: int, today: date) -> Snapshot:
    now = datetime.combine(today, time(8, 0), tzinfo=AMSTERDAM).astimezone(UTC)
    ids = [f"D{n}" for n in range(debtors)]
    return Snapshot(
        invoices=[
            InvoiceFacts(
                "books", f"F-{d}", f"F-{d}", d, DUE + timedelta(days=n % 20), "EUR", 50_000
            )
            for n, d in enumerate(ids)
        ],
        debtors={
            ("books", d): DebtorFacts(
                "books", d, DebtorKind.BUSINESS if n % 2 else DebtorKind.CONSUMER
            )
            for n, d in enumerate(ids)
        },
        instances={"books": InstanceFacts("books", "default", now)},
        history={("books", f"F-{d}"): [StepSent("reminder", DUE + timedelta(days=2))] for d in ids},
    )


def planned(debtors: int, today: date, **settings: Any) -> tuple[list[str], list[PlannedAction]]:
    policy = Policy(name="default", steps=STEPS, **settings)
    now = datetime.combine(today, time(9, 0), tzinfo=AMSTERDAM)
    result = plan(snapshot(debtors, today), {"default": policy}, now)
    return result.warnings, list(result.actions)


def test_a_step_that_claims_interest_waits_for_approval_past_the_table() -> None:
    warnings, actions = planned(44, PAST_TABLE)
    assert len(actions) == 44
    assert all(a.step == "aanmaning" for a in actions)
    assert all(a.requires_approval and a.interest is None for a in actions)
    assert all(law.HELD_WITHOUT_INTEREST in a.notes for a in actions)
    # 44 debtors, due on 20 different days, both articles: one warning, not 44
    [warning] = [w for w in warnings if "interest" in w]
    assert "ends on 2026-12-31" in warning and "wait for approval" in warning


def test_a_claim_from_before_the_table_is_held_with_its_own_reason() -> None:
    old = RateUnknownError(date(2014, 6, 1), law.Article.HANDELSRENTE, date(2026, 12, 31))
    assert "has no rates before its first half-year" in law.rate_gap_warning(old, False)
    new = RateUnknownError(date(2027, 1, 1), law.Article.HANDELSRENTE, date(2026, 12, 31))
    assert "it ends on 2026-12-31, so steps that claim interest wait for approval" in (
        law.rate_gap_warning(new, False)
    )


def test_the_policy_may_send_without_interest() -> None:
    warnings, actions = planned(3, PAST_TABLE, send_without_interest=True)
    assert [a.requires_approval for a in actions] == [False] * 3
    assert all(a.interest is None and law.HELD_WITHOUT_INTEREST not in a.notes for a in actions)
    [warning] = [w for w in warnings if "interest" in w]
    assert "go out without interest (send_without_interest = true)" in warning


def test_inside_the_table_nothing_is_held() -> None:
    today = date(2026, 12, 20)
    warnings, actions = planned(3, today)
    assert all(not a.requires_approval and a.interest is not None for a in actions)
    assert actions[0].interest == law.statutory_interest(
        Decimal("500.00"),
        actions[0].lines[0].due_date + timedelta(days=1),
        today,
        commercial=False,
    )
    assert not [w for w in warnings if "needs an update" in w]


def test_act_warns_once_before_anything_is_sent_and_holds_the_aanmaning(
    store: Store, tmp_path: Path
) -> None:
    book = Book(store, tmp_path, RecordingAction)
    RecordingAction.sent.clear()
    book.clock.now = datetime(2027, 1, 20, 8, 0, tzinfo=UTC)  # past the table
    late = DUE - timedelta(days=40)  # reminded long ago: the aanmaning is due
    book.book(invoice("F1", due=late), invoice("F2", due=late, debtor_id="D2"))
    sent_when_warned: list[int] = []

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "interest table" in record.getMessage():
                sent_when_warned.append(len(RecordingAction.sent))

    watch = Watch(level=logging.WARNING)
    logging.getLogger("debsync").addHandler(watch)
    try:
        first = book.act()  # the reminders: no interest, not held
        book.advance(8)
        second = book.act()  # the aanmaning would claim interest
    finally:
        logging.getLogger("debsync").removeHandler(watch)
    assert len(RecordingAction.sent) == 2
    assert {payload["step"] for _, payload in RecordingAction.sent} == {"reminder"}
    held = [r for r in book.rows() if r.step == "aanmaning"]
    assert [r.state for r in held] == [ActionState.AWAITING_APPROVAL] * 2
    assert all(law.HELD_WITHOUT_INTEREST in r.plan["notes"] for r in held)
    assert [w for w in first.warnings if "interest" in w] == []
    assert len([w for w in second.warnings if "interest" in w]) == 1
    assert sent_when_warned == [2]  # logged once, while the second act had sent nothing yet

    # the rates are published: added, and the held actions approved, they claim the interest
    rates = tmp_path / "rates.csv"
    rates.write_text(
        "valid_from,article,rate_percent,source\n2027-01-01,6:119,3.50,test\n"
        "2027-01-01,6:119a,9.90,test\n",
        encoding="utf-8",
    )
    book.config = replace(book.config, law=LawSettings(interest_rates=rates))
    for row in held:
        approve(store, row.key, "tester", book.clock())
    asyncio.run(book.dispatcher().execute())
    sent = [payload for _, payload in RecordingAction.sent if payload["step"] == "aanmaning"]
    expected = law.statutory_interest(
        Decimal("121.00"),
        late + timedelta(days=1),
        local_date(book.clock()),
        commercial=True,
        table=law.load_rate_table(rates),
    )
    assert [p["interest"] for p in sent] == [str(expected)] * 2


def test_an_action_queued_before_the_table_ended_is_held_when_it_would_be_sent(
    store: Store, tmp_path: Path
) -> None:
    book = Book(store, tmp_path, RecordingAction)
    RecordingAction.sent.clear()
    RecordingAction.script.clear()
    book.clock.now = datetime(2026, 12, 30, 8, 0, tzinfo=UTC)
    late = date(2026, 11, 1)
    book.book(invoice("F1", due=late))
    book.act()  # reminder
    book.advance(7)  # 6 January 2027: the aanmaning is planned and queued...
    assert queue_as_if_inside_the_table(book) == 1
    book.clock.now += timedelta(hours=1)
    asyncio.run(book.dispatcher().execute())  # ...and on sending, past the table, held instead
    [row] = [r for r in book.rows() if r.step == "aanmaning"]
    assert row.state == ActionState.AWAITING_APPROVAL
    assert [p["step"] for _, p in RecordingAction.sent] == ["reminder"]


def queue_as_if_inside_the_table(book: Book) -> int:
    """Plan and queue today's actions with a table that still covers the day, as a plan made
    before the table ran out did; the number of actions queued."""
    inside = law.load_rate_table()
    extended = law.RateTable(
        [
            *inside.rows(),
            law.RateRow(date(2027, 1, 1), law.Article.WETTELIJKE_RENTE, Decimal("0.04"), "t", "t"),
            law.RateRow(date(2027, 1, 1), law.Article.HANDELSRENTE, Decimal("0.104"), "t", "t"),
        ]
    )
    today_plan = plan_from_store(book.config, book.store, book.clock(), rates=extended)
    assert all(not a.requires_approval for a in today_plan.actions)
    return len(enqueue(book.store, today_plan.actions, book.clock()).new)


# -- the README's first command ------------------------------------------------------------------


def test_the_readme_first_command_sends_aanmaningen_with_statutory_interest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's first command on a fresh copy, at today's date: the bundled export says
    which invoices the bookkeeper already reminded, so the first run sends aanmaningen, and
    each states the statutory interest computed from the shipped table."""
    shutil.copy(REPO / "connectors.toml", tmp_path / "connectors.toml")
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEBSYNC_CONFIG", raising=False)
    monkeypatch.delenv("DEBSYNC_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 0, result.output
    assert "interest" not in result.output, result.output  # nothing held, nothing to warn

    shipped = law.load_rate_table()
    today = local_date(system_clock())
    assert today <= shipped.last_known()
    store = open_store(f"sqlite:///{tmp_path / 'var' / 'debsync.db'}")
    try:
        with store.engine.connect() as conn:
            query = sa.select(outbox.c.plan, outbox.c.state, outbox.c.planned_on).where(
                outbox.c.step == "aanmaning", outbox.c.channel == "email"
            )
            sent = conn.execute(query).all()
    finally:
        store.dispose()
    assert len(sent) >= 10  # the invoices with a recorded herinnering, one message a debtor
    assert {(state, day) for _, state, day in sent} == {(ActionState.SENT, today)}
    mails = [
        " ".join(text.split())
        for subject, text in _mails(tmp_path / "var" / "outbox")
        if subject.strip().startswith(("Aanmaning:", "Payment demand:"))
    ]
    assert len(mails) == len(sent)
    plain = [claim for claim, _, _ in sent if not claim["credits"]]  # none netted: by hand
    assert len(plain) >= 10
    for claim in plain:
        computed = sum(
            law.statutory_interest(
                Decimal(line["principal"]),
                date.fromisoformat(line["due_date"]) + timedelta(days=1),
                today,
                commercial=claim["kind"] == DebtorKind.BUSINESS,
                table=shipped,
            )
            for line in claim["lines"]
            if line["interest"] is not None
        ) or Decimal(0)
        assert Decimal(claim["interest"]) == computed > 0
        shown = " ".join(money(computed, "EUR", Language(claim["language"])).split())
        assert any(shown in mail for mail in mails), shown


def _mails(directory: Path) -> list[tuple[str, str]]:
    """Subject and plain text of every .eml written."""
    found = []
    for path in sorted(directory.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        assert body is not None
        found.append((str(message["Subject"]), body.get_content()))
    return found
