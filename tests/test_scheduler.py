"""The scheduler: ladder timing, grouping, money rules, legal guards, pauses, explanations."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from debsync import law
from debsync.clock import AMSTERDAM
from debsync.decisions import Plan, Reason, idempotency_key
from debsync.facts import (
    DebtorFacts,
    Instalment,
    InstanceFacts,
    InvoiceFacts,
    Pause,
    PauseKind,
    PauseScope,
    Snapshot,
    StepSent,
)
from debsync.model import DebtorKind, Language
from debsync.policy import Policy, Step, default_policy
from debsync.scheduler import plan

POLICIES = {"default": default_policy()}
DUE = date(2026, 3, 2)  # a Monday


def at(day: date) -> datetime:
    return datetime.combine(day, time(9, 0), tzinfo=AMSTERDAM)


def inv(
    number: str,
    open_eur: str = "100.00",
    *,
    debtor: str = "D1",
    due: date = DUE,
    currency: str = "EUR",
    direct_debit: bool = False,
) -> InvoiceFacts:
    minor = int(Decimal(open_eur) * 100)
    return InvoiceFacts("books", number, number, debtor, due, currency, minor, direct_debit)


def book(
    *invoices: InvoiceFacts,
    kind: DebtorKind = DebtorKind.BUSINESS,
    history: dict[str, list[StepSent]] | None = None,
    pauses: tuple[Pause, ...] = (),
    synced: datetime | None = None,
    language: Language = Language.NL,
) -> Snapshot:
    debtor_ids = {i.debtor_id for i in invoices}
    return Snapshot(
        invoices=list(invoices),
        debtors={("books", d): DebtorFacts("books", d, kind, language) for d in debtor_ids},
        instances={"books": InstanceFacts("books", "default", synced)},
        history={("books", k): v for k, v in (history or {}).items()},
        pauses=pauses,
    )


def run(snapshot: Snapshot, day: date, **kwargs: object) -> Plan:
    if snapshot.instances["books"].last_success_at is None:
        synced = at(day) - timedelta(hours=1)
        snapshot.instances = {"books": InstanceFacts("books", "default", synced)}
    return plan(snapshot, kwargs.pop("policies", POLICIES), at(day), **kwargs)  # type: ignore[arg-type]


def reasons(result: Plan) -> dict[str, Reason]:
    return {d.number: d.reason for d in result.decisions}


def sent(step: str, on: date, **kwargs: object) -> StepSent:
    return StepSent(step, on, **kwargs)  # type: ignore[arg-type]


# -- ladder timing -----------------------------------------------------------------------


def test_not_yet_due_then_reminder_the_day_after_the_due_date() -> None:
    before = run(book(inv("F1")), DUE)
    (decision,) = before.decisions
    assert decision.reason is Reason.NOT_DUE
    assert (decision.next_step, decision.next_on) == ("reminder", DUE + timedelta(days=1))

    after = run(book(inv("F1")), DUE + timedelta(days=1))
    (action,) = after.actions
    assert (action.step, action.channel, action.principal) == (
        "reminder",
        "email",
        Decimal("100.00"),
    )
    assert reasons(after) == {"F1": Reason.PLANNED}
    assert "1 days past due" in action.explanation


def test_one_message_per_debtor_step_and_channel() -> None:
    snapshot = book(
        inv("F1"),
        inv("F2", "50.00"),
        inv("F3", due=DUE - timedelta(days=3)),
        inv("G1", debtor="D2"),
    )
    result = run(snapshot, DUE + timedelta(days=1))
    by_debtor = {a.debtor_id: a for a in result.actions}
    assert [line.number for line in by_debtor["D1"].lines] == ["F3", "F1", "F2"]
    assert by_debtor["D1"].principal == Decimal("250.00")
    assert len(result.actions) == 2


def test_catch_up_after_downtime_emits_one_step_and_keeps_the_spacing() -> None:
    day = DUE + timedelta(days=60)
    first = run(book(inv("F1")), day)
    assert [a.step for a in first.actions] == ["reminder"]

    history = {"F1": [sent("reminder", day)]}
    assert run(book(inv("F1"), history=history), day + timedelta(days=6)).actions == []
    call = run(book(inv("F1"), history=history), day + timedelta(days=7))
    assert [a.step for a in call.actions] == ["call"]

    history["F1"].append(sent("call", day + timedelta(days=7)))
    # On an undisturbed ladder the aanmaning (14 days after due) follows the call (due + 8)
    # after 6 days; after downtime it keeps those 6 days from the call actually sent.
    waiting = run(book(inv("F1"), history=history), day + timedelta(days=12))
    assert waiting.decisions[0].reason is Reason.NOT_DUE
    assert waiting.decisions[0].next_on == day + timedelta(days=13)


def test_business_debtor_skips_the_veertiendagenbrief() -> None:
    history = {
        "F1": [
            sent("reminder", DUE + timedelta(days=1)),
            sent("call", DUE + timedelta(days=8)),
            sent("aanmaning", DUE + timedelta(days=14)),
        ]
    }
    result = run(book(inv("F1"), history=history), DUE + timedelta(days=21))
    assert [a.step for a in result.actions] == ["final-call"]


def test_consumer_gets_the_veertiendagenbrief_by_letter_and_email() -> None:
    history = {
        "F1": [
            sent("reminder", DUE + timedelta(days=1)),
            sent("call", DUE + timedelta(days=8)),
            sent("aanmaning", DUE + timedelta(days=14)),
        ]
    }
    day = DUE + timedelta(days=21)
    result = run(book(inv("F1", "1000.00"), kind=DebtorKind.CONSUMER, history=history), day)
    assert sorted(a.channel for a in result.actions) == ["email", "letter"]
    letter = next(a for a in result.actions if a.channel == "letter")
    assert letter.role == "wik_notice"
    assert letter.costs is None  # nothing is claimed yet …
    assert letter.announced_costs == Decimal("150.00")  # … but the exact amount is stated
    receipt = law.presumed_receipt(day, "letter")
    assert letter.deadline == law.veertiendagenbrief_term(receipt).last_day


def wik_history(wik_on: date) -> list[StepSent]:
    receipt = law.presumed_receipt(wik_on, "letter")
    return [
        sent("reminder", DUE + timedelta(days=1)),
        sent("call", DUE + timedelta(days=8)),
        sent("aanmaning", DUE + timedelta(days=14)),
        sent(
            "veertiendagenbrief",
            wik_on,
            role="wik_notice",
            received_on=receipt,
            stated_costs_minor=15000,
        ),
    ]


def test_consumer_waits_for_the_term_then_costs_follow_the_remaining_principal() -> None:
    wik_on = DUE + timedelta(days=21)
    history = {"F1": wik_history(wik_on)}
    term_end = law.veertiendagenbrief_term(law.presumed_receipt(wik_on, "letter")).last_day

    waiting = run(book(inv("F1", "1000.00"), kind=DebtorKind.CONSUMER, history=history), term_end)
    assert waiting.decisions[0].reason is Reason.WAITING_WIK_TERM

    escalate_on = law.add_business_days(term_end, 2)
    history["F1"].append(sent("final-call", escalate_on))
    handoff_day = escalate_on + timedelta(days=7)
    # a partial payment during the term lowers the costs to the staffel on the remainder
    result = run(book(inv("F1", "400.00"), kind=DebtorKind.CONSUMER, history=history), handoff_day)
    (handoff,) = result.actions
    assert handoff.step == "handoff" and handoff.requires_approval
    assert handoff.costs == Decimal("60.00")  # 15 % of 400
    assert reasons(result) == {"F1": Reason.AWAITING_APPROVAL}


def test_consumer_costs_never_exceed_what_the_letter_stated() -> None:
    wik_on = DUE + timedelta(days=21)
    history = {"F1": wik_history(wik_on)}
    history["F1"].append(sent("final-call", wik_on + timedelta(days=30)))
    # the open amount grew after the letter (a correction): costs stay at the stated 150.00
    result = run(
        book(inv("F1", "2000.00"), kind=DebtorKind.CONSUMER, history=history),
        wik_on + timedelta(days=37),
    )
    assert result.actions[0].costs == Decimal("150.00")


def test_consumer_handoff_without_veertiendagenbrief_is_refused() -> None:
    history = {"F1": [sent("final-call", DUE + timedelta(days=30))]}
    result = run(
        book(inv("F1"), kind=DebtorKind.CONSUMER, history=history), DUE + timedelta(days=60)
    )
    assert result.actions == []
    assert result.decisions[0].reason is Reason.NO_WIK


def test_unknown_debtor_kind_is_treated_as_a_consumer() -> None:
    history = {"F1": [sent("final-call", DUE + timedelta(days=30))]}
    result = run(
        book(inv("F1"), kind=DebtorKind.UNKNOWN, history=history), DUE + timedelta(days=60)
    )
    assert result.decisions[0].reason is Reason.NO_WIK


def test_business_handoff_carries_interest_and_the_40_euro_compensation() -> None:
    history = {
        "F1": [
            sent("reminder", date(2025, 7, 2)),
            sent("call", date(2025, 7, 9)),
            sent("aanmaning", date(2025, 7, 15)),
            sent("final-call", date(2025, 7, 22)),
        ]
    }
    snapshot = book(
        inv("F1", "10000.00", due=date(2025, 6, 30)),
        inv("F2", "10.00", due=date(2025, 6, 30)),
        history={**history, "F2": history["F1"]},
    )
    result = run(snapshot, date(2026, 1, 31))
    (handoff,) = result.actions
    assert handoff.costs == Decimal("80.00")  # EUR 40 per invoice (6:96 lid 4 BW)
    expected = law.statutory_interest(
        Decimal("10000.00"), date(2025, 7, 1), date(2026, 1, 31), commercial=True
    )
    assert [line.number for line in handoff.lines] == ["F1", "F2"]
    assert handoff.lines[0].interest == expected
    assert handoff.interest == sum(line.interest or 0 for line in handoff.lines)


def test_foreign_currency_is_dunned_without_interest_or_costs() -> None:
    history = {
        "F1": [
            sent("reminder", date(2025, 7, 2)),
            sent("call", date(2025, 7, 9)),
            sent("aanmaning", date(2025, 7, 15)),
            sent("final-call", date(2025, 7, 22)),
        ]
    }
    result = run(
        book(inv("F1", "500.00", due=date(2025, 6, 30), currency="USD"), history=history),
        date(2026, 1, 31),
    )
    (handoff,) = result.actions
    assert handoff.interest is None and handoff.costs is None
    assert any("USD" in note for note in handoff.notes)


def test_interest_past_the_rate_table_is_left_out_and_said_so() -> None:
    last = law.load_rate_table(None).last_known()
    day = last + timedelta(days=400)
    history = {
        "F1": [sent("reminder", day - timedelta(days=30)), sent("call", day - timedelta(days=23))]
    }
    result = run(book(inv("F1", due=day - timedelta(days=40)), history=history), day)
    (aanmaning,) = [a for a in result.actions if a.channel == "email"]
    assert aanmaning.interest is None
    assert any("interest left out" in note for note in aanmaning.notes)
    assert any("needs an update" in w for w in result.warnings)


# -- money rules ---------------------------------------------------------------------------


def test_credit_notes_paid_invoices_and_covered_debtors_get_nothing() -> None:
    day = DUE + timedelta(days=5)
    snapshot = book(
        inv("F1", "0.00"), inv("C1", "-50.00"), inv("F2", "40.00"), inv("G1", "80.00", debtor="D2")
    )
    result = run(snapshot, day)
    assert reasons(result)["F1"] is Reason.PAID
    assert reasons(result)["C1"] is Reason.CREDIT
    assert reasons(result)["F2"] is Reason.NET_BALANCE  # 40 - 50 <= 0
    assert [a.debtor_id for a in result.actions] == ["D2"]


def test_direct_debit_waits_for_a_failed_collection() -> None:
    waiting = run(book(inv("F1", direct_debit=True)), DUE + timedelta(days=200))
    assert reasons(waiting)["F1"] is Reason.DIRECT_DEBIT
    storno = inv("F1", direct_debit=True)._replace(direct_debit_failed=True)
    failed = run(book(storno), DUE + timedelta(days=11))
    assert reasons(failed)["F1"] is Reason.PLANNED


def test_below_threshold() -> None:
    result = run(book(inv("F1", "4.99")), DUE + timedelta(days=1))
    assert result.actions == []
    assert reasons(result)["F1"] is Reason.BELOW_THRESHOLD


def test_stale_data_blocks_every_action() -> None:
    day = DUE + timedelta(days=1)
    snapshot = book(inv("F1"), synced=at(day) - timedelta(hours=25))
    result = run(snapshot, day)
    assert result.actions == [] and reasons(result)["F1"] is Reason.STALE
    never = book(inv("F1"))
    never.instances = {"books": InstanceFacts("books", "default", None)}
    assert reasons(plan(never, POLICIES, at(day)))["F1"] is Reason.STALE


def test_nothing_after_a_handoff() -> None:
    history = {"F1": [sent("handoff", DUE + timedelta(days=40), role="handoff")]}
    result = run(book(inv("F1"), history=history), DUE + timedelta(days=90))
    assert reasons(result)["F1"] is Reason.HANDED_OFF


# -- pauses -------------------------------------------------------------------------------


def pause(
    kind: PauseKind, scope: PauseScope = "invoice", target: str = "F1", **kwargs: Any
) -> Pause:
    return Pause(
        id="p1",
        kind=kind,
        instance="books",
        scope=scope,
        target=target,
        reason="test",
        author="anna",
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("the_pause", "day", "expected"),
    [
        (pause(PauseKind.DISPUTE), DUE + timedelta(days=200), Reason.PAUSED),
        (pause(PauseKind.DISPUTE, "debtor", "D1"), DUE + timedelta(days=5), Reason.PAUSED),
        (
            pause(PauseKind.HOLD, "instance", "books", until=DUE + timedelta(days=9)),
            DUE + timedelta(days=9),
            Reason.PAUSED,
        ),
        (
            pause(PauseKind.HOLD, until=DUE + timedelta(days=9)),
            DUE + timedelta(days=10),
            Reason.PLANNED,
        ),
        (
            pause(PauseKind.PROMISE, until=DUE + timedelta(days=10)),
            DUE + timedelta(days=13),
            Reason.PAUSED,
        ),
        (
            pause(PauseKind.PROMISE, until=DUE + timedelta(days=10)),
            DUE + timedelta(days=14),
            Reason.PLANNED,
        ),
    ],
    ids=["dispute", "debtor-dispute", "instance-hold", "hold-over", "promise", "broken-promise"],
)
def test_pauses(the_pause: Pause, day: date, expected: Reason) -> None:
    result = run(book(inv("F1"), pauses=(the_pause,)), day)
    assert reasons(result)["F1"] is expected


def test_payment_plan_holds_while_instalments_arrive_and_a_missed_one_resumes() -> None:
    plan_pause = pause(
        PauseKind.PAYMENT_PLAN,
        instalments=(
            Instalment(DUE + timedelta(days=10), 5000),
            Instalment(DUE + timedelta(days=40), 5000),
        ),
        balance_minor=10000,
    )
    kept = run(book(inv("F1", "50.00"), pauses=(plan_pause,)), DUE + timedelta(days=20))
    assert reasons(kept)["F1"] is Reason.PAUSED
    missed = run(book(inv("F1", "100.00"), pauses=(plan_pause,)), DUE + timedelta(days=20))
    assert reasons(missed)["F1"] is Reason.PLANNED


# -- explanations, keys, policies ------------------------------------------------------------


def test_every_invoice_is_explained() -> None:
    result = run(book(inv("F1"), inv("F2", due=DUE + timedelta(days=30))), DUE + timedelta(days=1))
    (planned,) = result.explain("F1")
    assert "planned" in planned and "reminder" in planned
    (waiting,) = result.explain("F2")
    assert "not_yet_due" in waiting and (DUE + timedelta(days=31)).isoformat() in waiting


def test_idempotency_key_is_about_the_content() -> None:
    a = idempotency_key("books", "D1", "reminder", "email", ["F2", "F1"])
    assert a == idempotency_key("books", "D1", "reminder", "email", ["F1", "F2"])
    assert a != idempotency_key("books", "D1", "reminder", "email", ["F1"])
    assert a != idempotency_key("books", "D1", "reminder", "sms", ["F1", "F2"])


def test_policy_must_send_a_veertiendagenbrief_before_a_consumer_handoff() -> None:
    steps = (
        Step(name="reminder", channels=("email",), days_after_due=1),
        Step(name="handoff", channels=("agency",), days_after_previous=14, role="handoff"),
    )
    with pytest.raises(ValidationError, match="without a wik_notice"):
        Policy(name="x", steps=steps)
    business_only = steps[1].model_copy(update={"kinds": (DebtorKind.BUSINESS,)})
    Policy(name="x", steps=(steps[0], business_only))


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"name": "x", "channels": ["email"]}, "exactly one of"),
        ({"name": "x", "channels": ["fax"], "days_after_due": 1}, "unknown channel"),
        ({"name": "x", "channels": ["email"], "days_after_due": 1, "role": "wik_notice"}, "letter"),
        ({"name": "X Y", "channels": ["email"], "days_after_due": 1}, "lowercase"),
    ],
)
def test_step_validation(step: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Step.model_validate(step)
