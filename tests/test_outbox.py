"""The outbox and the dispatcher against a real store: each action sent exactly once,
re-checked before sending, retried, held for review, approved, dispatched, explained."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from debsync import hookimpl, outbox
from debsync.actions.base import (
    ActionOutcome,
    ActionUnavailableError,
    MessageContext,
    OutcomeUnknownError,
    PermanentActionError,
    Receipt,
    RetryableActionError,
)
from debsync.decisions import Reason
from debsync.facts import PauseKind
from debsync.outbox.executor import receipt_rule
from debsync.pauses import end_pause, start_pause
from debsync.planning import plan_from_store
from debsync.plugins import Plugins
from debsync.policy import Policy, Step
from debsync.store import Store
from debsync.store.schema import ActionState, events
from debsync.store.schema import outbox as outbox_table

from books import DUE, START, Book
from fakes import (
    IdempotentRecordingAction,
    LetterRecordingAction,
    RecordingAction,
    invoice,
)


@pytest.fixture(autouse=True)
def _clean_recorder() -> None:
    RecordingAction.sent.clear()
    RecordingAction.script.clear()
    RecordingAction.batches = 0


@pytest.fixture
def book(store: Store, tmp_path: Path) -> Book:
    b = Book(store, tmp_path, RecordingAction)
    b.book(
        invoice("F1", due=DUE),
        invoice("F2", "50.00", due=DUE),
        invoice("G1", debtor_id="D2", due=DUE),
    )
    return b


def test_act_sends_one_message_per_debtor_and_records_the_step(book: Book) -> None:
    report = book.act()

    assert report.enqueued == 2 and report.outcomes[ActionState.SENT] == 2
    sent = {payload["invoices"][0][0]: payload for _, payload in RecordingAction.sent}
    assert sorted(p["invoices"] for p in sent.values()) == [["F1", "F2"], ["G1"]]
    assert RecordingAction.batches == 1  # one session (connection) for the batch
    steps = book.events("step.sent")
    assert sorted(e.invoice_id for e in steps) == ["F1", "F2", "G1"]
    assert {e.data["step"] for e in steps} == {"reminder"}
    assert {r.state for r in book.rows()} == {ActionState.SENT}


def test_acting_twice_sends_once(book: Book) -> None:
    book.act()
    second = book.act()

    assert second.enqueued == 0 and not second.outcomes
    assert len(RecordingAction.sent) == 2 and len(book.rows()) == 2


def test_the_same_plan_enqueues_once(book: Book) -> None:
    today = plan_from_store(book.config, book.store, book.clock())
    first = outbox.enqueue(book.store, today.actions, book.clock())
    second = outbox.enqueue(book.store, today.actions, book.clock())
    assert len(first.new) == 2 and second.new == [] and second.existing == 2
    assert len(book.rows()) == 2


def test_the_ladder_advances_from_the_day_a_step_was_sent(book: Book) -> None:
    book.act()
    book.advance(6)
    assert book.act().planned == 0
    book.advance(1)
    report = book.act()
    assert report.outcomes[ActionState.SENT] == 2
    assert {payload["step"] for _, payload in RecordingAction.sent[2:]} == {"aanmaning"}


def test_an_invoice_paid_before_sending_is_dropped_from_the_message(book: Book) -> None:
    today = plan_from_store(book.config, book.store, book.clock())
    outbox.enqueue(book.store, today.actions, book.clock())
    book.book(invoice("F1", due=DUE), invoice("G1", debtor_id="D2", due=DUE))  # F2 paid

    report = asyncio.run(book.dispatcher().execute())

    assert report.outcomes[ActionState.SENT] == 2
    d1 = next(p for _, p in RecordingAction.sent if p["invoices"][0] == "F1")
    assert d1["invoices"] == ["F1"] and d1["principal"] == "121.00"
    dropped = book.events("action.invoice_dropped")
    assert [(e.invoice_id, e.data["reason"]) for e in dropped] == [("F2", "paid")]
    assert "F2" not in {e.invoice_id for e in book.events("step.sent")}


def test_an_action_whose_invoices_are_all_paid_is_cancelled(book: Book) -> None:
    today = plan_from_store(book.config, book.store, book.clock())
    outbox.enqueue(book.store, today.actions, book.clock())
    book.book(invoice("F1", due=DUE), invoice("F2", "50.00", due=DUE))  # G1 paid

    asyncio.run(book.dispatcher().execute())

    g1 = next(r for r in book.rows() if r.debtor_id == "D2")
    assert g1.state == ActionState.CANCELLED and g1.cancel_code == "paid"
    assert len(RecordingAction.sent) == 1


def test_a_paused_action_is_cancelled_then_revived_when_the_pause_ends(book: Book) -> None:
    today = plan_from_store(book.config, book.store, book.clock())
    outbox.enqueue(book.store, today.actions, book.clock())
    pause = start_pause(
        book.store,
        kind=PauseKind.DISPUTE,
        instance="books",
        scope="debtor",
        target="D2",
        reason="disputes the delivery",
        author="anna",
        clock=book.clock,
    )
    asyncio.run(book.dispatcher().execute())
    g1 = next(r for r in book.rows() if r.debtor_id == "D2")
    assert (g1.state, g1.cancel_code) == (ActionState.CANCELLED, "paused")

    end_pause(book.store, pause.id, reason="resolved", author="anna", clock=book.clock)
    report = book.act()

    assert report.revived == 1 and report.outcomes[ActionState.SENT] == 1
    assert next(r for r in book.rows() if r.debtor_id == "D2").state == ActionState.SENT


def test_retryable_failures_back_off_then_die(book: Book) -> None:
    keys = {
        a.debtor_id: a.key for a in plan_from_store(book.config, book.store, book.clock()).actions
    }
    RecordingAction.script[keys["D2"]] = [
        RetryableActionError("421 try later", retry_after=600) for _ in range(3)
    ]
    book.act()
    row = next(r for r in book.rows() if r.debtor_id == "D2")
    assert row.state == ActionState.FAILED and row.attempts == 1
    assert row.next_attempt_at == book.clock.now + timedelta(seconds=600)  # Retry-After wins

    asyncio.run(book.dispatcher().execute())  # not due yet: nothing happens
    assert next(r for r in book.rows() if r.debtor_id == "D2").attempts == 1

    for _ in range(2):
        book.clock.now += timedelta(hours=1)
        asyncio.run(book.dispatcher().execute())
    row = next(r for r in book.rows() if r.debtor_id == "D2")
    assert row.state == ActionState.DEAD and row.attempts == 3 and "gave up" in row.last_error
    assert [r.key for r in outbox.rows(book.store, states=[ActionState.DEAD])] == [keys["D2"]]


def test_a_permanent_failure_is_dead_at_once(book: Book) -> None:
    keys = {
        a.debtor_id: a.key for a in plan_from_store(book.config, book.store, book.clock()).actions
    }
    RecordingAction.script[keys["D1"]] = [PermanentActionError("550 mailbox unknown")]
    book.act()
    row = next(r for r in book.rows() if r.debtor_id == "D1")
    assert row.state == ActionState.DEAD and row.last_error == "550 mailbox unknown"
    assert {e.invoice_id for e in book.events("step.sent")} == {"G1"}


def test_an_unknown_outcome_waits_for_a_person(book: Book) -> None:
    keys = {
        a.debtor_id: a.key for a in plan_from_store(book.config, book.store, book.clock()).actions
    }
    RecordingAction.script[keys["D1"]] = [OutcomeUnknownError("connection lost after DATA")]
    book.act()
    book.clock.now += timedelta(days=1)
    asyncio.run(book.dispatcher().execute())

    (doubt,) = outbox.rows(book.store, states=[ActionState.IN_DOUBT])
    assert doubt.key == keys["D1"] and len(RecordingAction.sent) == 1  # never retried alone
    # the plan explains why F1 and F2 wait
    reasons = {
        d.number: d.reason for d in plan_from_store(book.config, book.store, book.clock()).decisions
    }
    assert reasons["F1"] is Reason.QUEUED

    outbox.confirm(book.store, doubt.key[:8], "anna", book.clock(), receipt_rule(book.config))
    row = next(r for r in book.rows() if r.key == doubt.key)
    assert row.state == ActionState.SENT and row.dispatched_on == START.date()
    assert {e.invoice_id for e in book.events("step.sent")} == {"F1", "F2", "G1"}


def test_resend_after_review_sends_again(book: Book) -> None:
    keys = {
        a.debtor_id: a.key for a in plan_from_store(book.config, book.store, book.clock()).actions
    }
    RecordingAction.script[keys["D1"]] = [OutcomeUnknownError("timeout after DATA")]
    book.act()
    outbox.resend(book.store, keys["D1"], "anna", book.clock())
    asyncio.run(book.dispatcher().execute())
    assert [k for k, _ in RecordingAction.sent].count(keys["D1"]) == 1
    assert next(r for r in book.rows() if r.key == keys["D1"]).state == ActionState.SENT


def test_idempotent_channels_retry_in_doubt_actions_by_themselves(
    store: Store, tmp_path: Path
) -> None:
    book = Book(store, tmp_path, IdempotentRecordingAction)
    book.book(invoice("F1", due=DUE))
    (key,) = [a.key for a in plan_from_store(book.config, book.store, book.clock()).actions]
    RecordingAction.script[key] = [OutcomeUnknownError("read timeout")]
    book.act()
    assert book.rows()[0].state == ActionState.IN_DOUBT
    book.clock.now += timedelta(minutes=5)
    asyncio.run(book.dispatcher().execute())
    assert book.rows()[0].state == ActionState.SENT and len(RecordingAction.sent) == 1


def test_a_worker_that_died_while_sending_leaves_the_action_in_doubt(book: Book) -> None:
    today = plan_from_store(book.config, book.store, book.clock())
    outbox.enqueue(book.store, today.actions, book.clock())
    (row, other) = outbox.claim(
        book.store,
        "dead-worker",
        book.clock(),
        lease=timedelta(seconds=60),
        limit=10,
        routes=book.config.routes().keys(),
    )
    with book.store.engine.begin() as conn:  # it got as far as "sending", then was killed
        assert outbox.move(
            conn,
            row,
            ActionState.SENDING,
            book.clock(),
            from_states=(ActionState.PLANNED,),
            owner="dead-worker",
        )
    asyncio.run(book.dispatcher().execute())
    assert (
        next(r for r in book.rows() if r.key == row.key).state == ActionState.SENDING
    )  # lease held

    book.clock.now += timedelta(seconds=61)
    asyncio.run(book.dispatcher().execute())
    assert next(r for r in book.rows() if r.key == row.key).state == ActionState.IN_DOUBT
    assert [k for k, _ in RecordingAction.sent] == [other.key]  # its lease expired: sent once


def _two_debtors_watched(store: Store, tmp_path: Path, watch: Callable[[], None]) -> Book:
    """A book with one action for each of two debtors, whose channel calls ``watch`` as each
    message leaves."""

    class Watching(RecordingAction):
        async def send(self, payload: dict[str, Any], idempotency_key: str) -> Receipt:
            watch()
            return await super().send(payload, idempotency_key)

    b = Book(store, tmp_path, Watching)
    b.book(invoice("F1", due=DUE), invoice("G1", debtor_id="D2", due=DUE))
    return b


def test_a_channel_sent_one_row_at_a_time_stores_each_outcome_before_the_next_send(
    store: Store, tmp_path: Path
) -> None:
    """One commit per message (the outcome stored with the next row's mark) keeps the order
    exactly-once needs: when a message leaves, its own row alone is sending and every earlier
    outcome is stored."""
    seen: list[list[str]] = []

    def states() -> None:
        with store.engine.connect() as conn:
            seen.append(sorted(conn.execute(sa.select(outbox_table.c.state)).scalars()))

    b = _two_debtors_watched(store, tmp_path, states)

    report = b.act()

    assert report.outcomes[ActionState.SENT] == 2
    assert seen == [["planned", "sending"], ["sending", "sent"]]
    assert [r.state for r in b.rows()] == ["sent", "sent"]


def test_sending_leaves_the_garbage_collector_as_it_found_it(store: Store, tmp_path: Path) -> None:
    """The outbox lets the collector skip the heap it found while it sends, and gives it
    back whole: nothing stays frozen out of collection after ``act``."""
    frozen: list[int] = []
    b = _two_debtors_watched(store, tmp_path, lambda: frozen.append(gc.get_freeze_count()))
    assert gc.get_freeze_count() == 0

    assert b.act().outcomes[ActionState.SENT] == 2

    assert len(frozen) == 2 and all(count > 0 for count in frozen)
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_two_workers_never_claim_the_same_action(book: Book) -> None:
    today = plan_from_store(book.config, book.store, book.clock())
    outbox.enqueue(book.store, today.actions, book.clock())
    kwargs = {"lease": timedelta(seconds=60), "limit": 1, "routes": book.config.routes().keys()}
    first = outbox.claim(book.store, "a", book.clock(), **kwargs)  # type: ignore[arg-type]
    second = outbox.claim(book.store, "b", book.clock(), **kwargs)  # type: ignore[arg-type]
    third = outbox.claim(book.store, "c", book.clock(), **kwargs)  # type: ignore[arg-type]
    assert len(first) == len(second) == 1 and third == []
    assert first[0].key != second[0].key


def test_a_claim_takes_the_oldest_due_rows_of_every_state(store: Store) -> None:
    """Due, unleased and routed rows, oldest first across states, up to the limit: a due
    retry and an in-doubt row on a deduplicating channel go before later planned and approved
    rows; one not yet due, one in doubt on a channel that does not deduplicate, one leased and
    one of another route stay."""
    now = START
    later, earlier = now + timedelta(minutes=5), now - timedelta(minutes=5)
    rows: list[tuple[str, dict[str, Any]]] = [
        ("planned", {}),
        ("failed", {"next_attempt_at": later}),  # not due yet
        ("failed", {"next_attempt_at": earlier}),
        ("in_doubt", {"next_attempt_at": earlier, "idempotent": False}),
        ("in_doubt", {"next_attempt_at": earlier, "idempotent": True}),
        ("planned", {"lease_owner": "other", "lease_until": later}),
        ("planned", {"channel": "sms"}),  # another route
        ("sent", {}),
        ("approved", {}),
        ("planned", {"lease_owner": "gone", "lease_until": earlier}),  # an expired lease
        ("planned", {}),
        ("approved", {}),
    ]
    with store.engine.begin() as conn:
        for n, (state, extra) in enumerate(rows):
            values: dict[str, Any] = {
                "id": n + 1,
                "key": f"key-{n}",
                "instance": "books",
                "debtor_id": f"D{n}",
                "step": "reminder",
                "channel": "email",
                "legal_copy": False,
                "requires_approval": False,
                "state": state,
                "invoice_ids": [f"F{n}"],
                "plan": {},
                "planned_on": now.date(),
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            conn.execute(sa.insert(outbox_table).values({**values, **extra}))
    lease, routes = timedelta(minutes=1), [("books", "email")]

    first = outbox.claim(store, "me", now, lease=lease, limit=4, routes=routes)
    rest = outbox.claim(store, "me", now, lease=lease, limit=4, routes=routes)

    assert [r.id for r in first] == [1, 3, 5, 9]
    assert [r.id for r in rest] == [10, 11, 12]
    assert {r.lease_owner for r in first + rest} == {"me"}
    assert outbox.claim(store, "me", now, lease=lease, limit=4, routes=routes) == []


def test_an_unavailable_channel_stops_the_batch_without_counting_attempts(book: Book) -> None:
    keys = sorted(a.key for a in plan_from_store(book.config, book.store, book.clock()).actions)
    rows_in_order = sorted(
        plan_from_store(book.config, book.store, book.clock()).actions, key=lambda a: a.debtor_id
    )
    RecordingAction.script[rows_in_order[0].key] = [ActionUnavailableError("535 auth refused")]

    report = book.act()

    assert report.unavailable == {"mail": "535 auth refused"} and not report.ok
    assert RecordingAction.sent == []  # the second action was not even tried
    states = {r.key: (r.state, r.attempts) for r in book.rows()}
    assert states[rows_in_order[0].key] == (ActionState.FAILED, 0)
    assert states[rows_in_order[1].key] == (ActionState.PLANNED, 0)
    assert sorted(states) == keys


def test_approval_then_rejection_keeps_the_invoice_from_being_planned_again(book: Book) -> None:
    for days in (0, 7, 7):
        book.advance(days)
        book.act()
    waiting = outbox.rows(book.store, states=[ActionState.AWAITING_APPROVAL])
    assert {r.step for r in waiting} == {"handoff"} and len(waiting) == 2
    d1, d2 = sorted(waiting, key=lambda r: r.debtor_id)

    outbox.approve(book.store, d1.key, "anna", book.clock())
    outbox.reject(book.store, d2.key, "anna", "customer of twenty years", book.clock())
    book.act()

    states = {r.key: r.state for r in book.rows()}
    assert states[d1.key] == ActionState.SENT and states[d2.key] == ActionState.CANCELLED
    reasons = {
        d.number: d.reason for d in plan_from_store(book.config, book.store, book.clock()).decisions
    }
    assert reasons["G1"] is Reason.REJECTED and reasons["F1"] is Reason.HANDED_OFF
    with pytest.raises(outbox.OutboxError, match="only an action that is"):
        outbox.reject(book.store, d1.key, "anna", "too late", book.clock())


def test_every_transition_is_in_the_dossier(book: Book) -> None:
    book.act()
    with book.store.engine.connect() as conn:
        kinds = [
            r.kind
            for r in conn.execute(
                sa.select(events.c.kind).where(events.c.debtor_id == "D2").order_by(events.c.id)
            )
        ]
    assert kinds[-4:] == ["action.planned", "action.sending", "action.sent", "step.sent"]


def test_a_printed_letter_takes_its_step_when_posted(store: Store, tmp_path: Path) -> None:
    book = Book(store, tmp_path, LetterRecordingAction)
    letter_policy = Policy(
        name="default",
        steps=(Step(name="aanmaning", channels=("letter",), days_after_due=1),),
    )
    book.config = replace(book.config, policies={"default": letter_policy})
    book.book(invoice("F1", due=DUE))

    book.act()
    (row,) = book.rows()
    assert row.state == ActionState.SENT and row.dispatched_on is None
    assert book.events("step.sent") == []
    reasons = {
        d.number: d.reason for d in plan_from_store(book.config, book.store, book.clock()).decisions
    }
    assert reasons["F1"] is Reason.AWAITING_DISPATCH

    posted = START.date() + timedelta(days=2)
    outbox.mark_posted(book.store, row.key, posted, "anna", book.clock(), receipt_rule(book.config))
    (step,) = book.events("step.sent")
    assert step.data["sent_on"] == posted.isoformat()
    with pytest.raises(outbox.OutboxError, match="not a printed letter"):
        outbox.mark_posted(
            book.store, row.key, posted, "anna", book.clock(), receipt_rule(book.config)
        )


def test_the_outbox_table_enforces_one_row_per_key(book: Book) -> None:
    book.act()
    row = book.rows()[0]
    with pytest.raises(sa.exc.IntegrityError), book.store.engine.begin() as conn:
        conn.execute(
            sa.insert(outbox_table).values(**{c: getattr(row, c) for c in row._fields if c != "id"})
        )


class Crm:
    """A CRM plugin that knows of disputes and keeps an audit trail."""

    def __init__(self) -> None:
        self.disputed: set[str] = set()
        self.outcomes: list[ActionOutcome] = []

    @hookimpl
    def debsync_veto_action(self, context: MessageContext) -> str | None:
        if context.debtor.external_id in self.disputed:
            return "the CRM records a dispute"
        return None

    @hookimpl
    def debsync_action_finished(self, outcome: ActionOutcome) -> None:
        self.outcomes.append(outcome)


class BrokenCheck:
    @hookimpl
    def debsync_veto_action(self, context: MessageContext) -> str | None:
        raise ConnectionError("CRM unreachable")


def test_hook_debsync_veto_action(book: Book) -> None:
    crm = Crm()
    crm.disputed.add("D2")
    book.plugins = Plugins(entry_points=False, extra=[("crm", crm)])

    book.act()

    g1 = next(r for r in book.rows() if r.debtor_id == "D2")
    assert g1.state == ActionState.CANCELLED and g1.cancel_code == "vetoed"
    assert g1.last_error == "vetoed: the CRM records a dispute (plugin crm)"
    assert [p["invoices"] for _, p in RecordingAction.sent] == [["F1", "F2"]]

    crm.disputed.clear()  # the dispute is settled: the next plan revives the action
    report = book.act()
    assert (
        report.revived == 1
        and next(r for r in book.rows() if r.debtor_id == "D2").state == ActionState.SENT
    )


def test_a_veto_check_that_fails_blocks_the_action(book: Book) -> None:
    book.plugins = Plugins(entry_points=False, extra=[("broken-crm", BrokenCheck())])
    book.act()
    assert RecordingAction.sent == []
    errors = {r.last_error for r in book.rows()}
    assert errors == {
        "vetoed: the veto check of plugin broken-crm failed: ConnectionError: CRM unreachable"
    }


def test_hook_debsync_action_finished(book: Book) -> None:
    crm = Crm()
    book.plugins = Plugins(entry_points=False, extra=[("crm", crm)])
    keys = {
        a.debtor_id: a.key for a in plan_from_store(book.config, book.store, book.clock()).actions
    }
    RecordingAction.script[keys["D2"]] = [PermanentActionError("550 no such mailbox")]

    book.act()

    by_debtor = {o.debtor_id: o for o in crm.outcomes}
    assert by_debtor["D1"].state == "sent" and by_debtor["D1"].receipt is not None
    assert by_debtor["D1"].receipt.provider_id == "rec-1" and by_debtor["D1"].action == "mail"
    assert (by_debtor["D2"].state, by_debtor["D2"].error) == ("dead", "550 no such mailbox")
    assert {o.key for o in crm.outcomes} == set(keys.values())


def test_an_idempotent_channel_stops_retrying_an_unknown_outcome(
    store: Store, tmp_path: Path
) -> None:
    book = Book(store, tmp_path, IdempotentRecordingAction)
    book.book(invoice("F1", due=DUE))
    (key,) = [a.key for a in plan_from_store(book.config, book.store, book.clock()).actions]
    RecordingAction.script[key] = [OutcomeUnknownError("read timeout") for _ in range(3)]
    book.act()
    for _ in range(2):
        book.clock.now += timedelta(hours=7)
        asyncio.run(book.dispatcher().execute())
    (row,) = book.rows()
    assert row.state == ActionState.DEAD and row.attempts == 3
    assert row.last_error == "gave up after 3 attempts, outcome unknown: read timeout"
