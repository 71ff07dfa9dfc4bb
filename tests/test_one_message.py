"""One message per debtor per channel per day, at the highest step among its invoices, each
invoice named with its own stage and recording its own step (issue 11, item 4)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from debsync import outbox
from debsync.claims import build_action
from debsync.decisions import Reason
from debsync.facts import DebtorFacts, StepSent
from debsync.model import DebtorKind
from debsync.planning import plan_from_store
from debsync.policy import default_policy
from debsync.store import Store
from debsync.store.schema import ActionState
from test_scheduler import DUE, book, inv, reasons, run, sent

from books import DUE as BOOKED_DUE
from books import Book
from fakes import RecordingAction, invoice


def at_aanmaning() -> list[StepSent]:
    return [sent("reminder", DUE + timedelta(days=1)), sent("call", DUE + timedelta(days=8))]


def test_an_aanmaning_and_a_reminder_for_one_debtor_are_one_message() -> None:
    """The issue: "Laatste aanmaning" for three invoices and "Aanmaning: factuur 2026-0224"
    the same day, to the same debtor."""
    day = DUE + timedelta(days=20)
    snapshot = book(
        inv("2026-0101", "500.00"),
        inv("2026-0224", "200.00", due=day - timedelta(days=1)),
        history={"2026-0101": at_aanmaning()},
    )
    result = run(snapshot, day)

    email = [a for a in result.actions if a.channel == "email"]
    assert len(email) == 1
    (message,) = email
    assert message.step == "aanmaning"
    stages = {line.number: line.step for line in message.lines}
    assert stages == {"2026-0101": "aanmaning", "2026-0224": "reminder"}
    assert message.principal == Decimal("700.00")
    interest = {line.number: line.interest for line in message.lines}
    assert interest["2026-0224"] is None  # named as a reminder: no aanmaning-level claim
    assert interest["2026-0101"] is not None and interest["2026-0101"] > 0
    letters = [a for a in result.actions if a.channel == "letter"]
    assert [[line.number for line in a.lines] for a in letters] == [["2026-0101"]]
    decided = {d.number: (d.reason, d.next_step) for d in result.decisions}
    assert decided == {
        "2026-0101": (Reason.PLANNED, "aanmaning"),
        "2026-0224": (Reason.PLANNED, "reminder"),
    }


def test_a_lower_stage_invoice_is_not_announced_costs_in_a_veertiendagenbrief() -> None:
    day = DUE + timedelta(days=40)
    history = {
        "F1": [
            sent("reminder", DUE + timedelta(days=1)),
            sent("call", DUE + timedelta(days=8)),
            sent("aanmaning", DUE + timedelta(days=15)),
        ]
    }
    snapshot = book(
        inv("F1", "1000.00"),
        inv("F2", "3000.00", due=day - timedelta(days=1)),
        kind=DebtorKind.CONSUMER,
        history=history,
    )
    result = run(snapshot, day)
    (email,) = [a for a in result.actions if a.channel == "email"]
    assert email.step == "veertiendagenbrief"
    assert {line.number: line.step for line in email.lines} == {
        "F1": "veertiendagenbrief",
        "F2": "reminder",
    }
    assert email.announced_costs == Decimal("150.00")  # the staffel on F1's 1,000 only
    (letter,) = [a for a in result.actions if a.channel == "letter"]
    assert [line.number for line in letter.lines] == ["F1"]


def test_each_message_key_protects_each_invoices_own_step() -> None:
    day = DUE + timedelta(days=20)
    combined = book(
        inv("F1"),
        inv("F2", due=day - timedelta(days=1)),
        history={"F1": at_aanmaning()},
    )
    alone = book(inv("F1"), inv("F2"), history={"F1": at_aanmaning(), "F2": at_aanmaning()})
    key = {a.key for a in run(combined, day).actions if a.channel == "email"}
    other = {a.key for a in run(alone, day).actions if a.channel == "email"}
    assert key and other and key != other  # F2 at its reminder is not F2 at its aanmaning


def test_sending_a_combined_message_records_each_invoices_own_step(
    store: Store, tmp_path: Path
) -> None:
    RecordingAction.sent.clear()
    b = Book(store, tmp_path, RecordingAction)
    b.book(invoice("F1", due=BOOKED_DUE))
    b.act()  # F1's reminder
    b.advance(7)
    b.book(invoice("F1", due=BOOKED_DUE), invoice("F2", due=BOOKED_DUE + timedelta(days=6)))

    report = b.act()

    assert report.outcomes[ActionState.SENT] == 1
    _, payload = RecordingAction.sent[-1]
    assert payload["step"] == "aanmaning" and payload["invoices"] == ["F1", "F2"]
    steps = sorted((e.invoice_id, e.data["step"]) for e in b.events("step.sent"))
    assert steps == [("F1", "aanmaning"), ("F1", "reminder"), ("F2", "reminder")]
    (f2,) = [e for e in b.events("step.sent") if e.invoice_id == "F2"]
    assert f2.data["named_in_step"] == "aanmaning" and f2.data["role"] is None

    assert b.act().planned == 0  # the same day: nothing again
    b.advance(1)
    assert b.act().planned == 0  # F2's reminder is not sent again; its aanmaning waits
    b.advance(6)
    b.act()
    _, last = RecordingAction.sent[-1]
    assert (last["step"], last["invoices"]) == ("aanmaning", ["F2"])


def test_below_threshold_and_reasons_are_per_invoice() -> None:
    day = DUE + timedelta(days=20)
    snapshot = book(
        inv("F1", "2.00"),
        inv("F2", "1.00", due=day - timedelta(days=1)),
        history={"F1": at_aanmaning()},
    )
    result = run(snapshot, day)
    assert result.actions == []
    assert reasons(result) == {"F1": Reason.BELOW_THRESHOLD, "F2": Reason.BELOW_THRESHOLD}


def test_a_message_left_with_lower_stage_invoices_only_goes_at_their_step() -> None:
    """When the invoices at the message's own step are paid before sending, what is left goes
    at the highest step left (no "Aanmaning" for a reminder), claiming nothing more."""
    policy = default_policy()
    aanmaning = policy.index("aanmaning")
    assert aanmaning is not None
    debtor = DebtorFacts("books", "D1", DebtorKind.BUSINESS)
    lower = inv("F2")
    action = build_action(
        debtor,
        policy,
        aanmaning,
        "email",
        "EUR",
        [lower],
        {},
        DUE + timedelta(days=30),
        stages={"F2": 0},
    )
    assert action is not None and (action.step, action.template) == ("reminder", "reminder")
    assert action.interest is None and not action.requires_approval
    assert [line.step for line in action.lines] == ["reminder"]


def test_when_the_higher_stage_invoice_is_paid_before_sending_the_rest_goes_as_its_own_step(
    store: Store, tmp_path: Path
) -> None:
    RecordingAction.sent.clear()
    b = Book(store, tmp_path, RecordingAction)
    b.book(invoice("F1", due=BOOKED_DUE))
    b.act()
    b.advance(7)
    b.book(invoice("F1", due=BOOKED_DUE), invoice("F2", due=BOOKED_DUE + timedelta(days=6)))
    today = plan_from_store(b.config, b.store, b.clock())
    (combined,) = today.actions
    assert combined.step == "aanmaning"
    outbox.enqueue(b.store, today.actions, b.clock())
    b.book(invoice("F2", due=BOOKED_DUE + timedelta(days=6)))  # F1 paid meanwhile

    asyncio.run(b.dispatcher().execute())

    _, payload = RecordingAction.sent[-1]
    assert (payload["step"], payload["invoices"], payload["interest"]) == ("reminder", ["F2"], None)
    steps = sorted((e.invoice_id, e.data["step"]) for e in b.events("step.sent"))
    assert steps == [("F1", "reminder"), ("F2", "reminder")]


def test_a_second_run_the_same_day_sends_the_debtor_no_second_message(
    store: Store, tmp_path: Path
) -> None:
    RecordingAction.sent.clear()
    b = Book(store, tmp_path, RecordingAction)
    b.book(invoice("F1", due=BOOKED_DUE))
    b.act()  # F1's reminder this morning
    late = invoice("F3", due=BOOKED_DUE - timedelta(days=3))  # booked late, already overdue
    b.book(invoice("F1", due=BOOKED_DUE), late)

    assert b.act().planned == 0
    decided = {d.number: d for d in plan_from_store(b.config, b.store, b.clock()).decisions}
    assert decided["F3"].reason is Reason.MESSAGED_TODAY
    assert decided["F3"].next_on == b.clock().date() + timedelta(days=1)

    b.advance(1)
    b.act()
    _, payload = RecordingAction.sent[-1]
    assert (payload["step"], payload["invoices"]) == ("reminder", ["F3"])
