"""Properties of ``plan`` over random invoice books, histories and clocks (hypothesis)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from debsync import law
from debsync.clock import AMSTERDAM
from debsync.decisions import Plan, Reason
from debsync.facts import DebtorFacts, InstanceFacts, InvoiceFacts, Snapshot, StepSent
from debsync.model import DebtorKind, Language
from debsync.policy import default_policy
from debsync.scheduler import plan

POLICY = default_policy()
POLICIES = {"default": POLICY}
START = date(2025, 1, 1)


@st.composite
def books(draw: st.DrawFn) -> tuple[Snapshot, date]:
    """A random book: debtors of every kind, invoices (some paid, some credit notes, some in
    other currencies) and, for each, a history that is a prefix of the ladder it applies."""
    today = START + timedelta(days=draw(st.integers(0, 520)))
    n_debtors = draw(st.integers(1, 6))
    debtors = {
        ("books", f"D{i}"): DebtorFacts(
            "books",
            f"D{i}",
            draw(st.sampled_from(list(DebtorKind))),
            draw(st.sampled_from(list(Language))),
            None,
            frozenset(draw(st.sets(st.sampled_from(["email", "letter", "call", "sms"])))),
        )
        for i in range(n_debtors)
    }
    invoices: list[InvoiceFacts] = []
    history: dict[tuple[str, str], list[StepSent]] = {}
    for n in range(draw(st.integers(1, 12))):
        debtor = f"D{draw(st.integers(0, n_debtors - 1))}"
        due = today - timedelta(days=draw(st.integers(-20, 200)))
        open_minor = draw(st.one_of(st.just(0), st.integers(-20_000, 500_000)))
        currency = draw(st.sampled_from(["EUR", "EUR", "EUR", "USD"]))
        number = f"F{n}"
        invoices.append(
            InvoiceFacts(
                "books",
                number,
                number,
                debtor,
                due,
                currency,
                open_minor,
                draw(st.booleans()),
                draw(st.integers(0, 9)) == 0,
            )
        )
        kind = debtors[("books", debtor)].kind
        applicable = [s for s in POLICY.steps if s.applies_to(kind)]
        taken = draw(st.integers(0, len(applicable)))
        day = due
        steps = []
        for step in applicable[:taken]:
            day = day + timedelta(days=draw(st.integers(1, 20)))
            if day > today:
                break
            received = law.presumed_receipt(day, "letter") if step.role == "wik_notice" else None
            stated = 4000 if step.role == "wik_notice" else None
            steps.append(StepSent(step.name, day, step.role, received, stated))
        if steps:
            history[("books", number)] = steps
    synced = datetime.combine(today, time(8, 0), tzinfo=AMSTERDAM)
    snapshot = Snapshot(
        invoices, debtors, {"books": InstanceFacts("books", "default", synced)}, history
    )
    return snapshot, today


def run(snapshot: Snapshot, day: date) -> Plan:
    return plan(
        snapshot,
        POLICIES,
        datetime.combine(day, time(9, 0), tzinfo=AMSTERDAM),
        check_freshness=False,
    )


PROPERTY = settings(max_examples=150, deadline=None)
LADDER = settings(max_examples=80, deadline=None)  # issue 11's properties, kept quick


@PROPERTY
@given(books())
def test_no_action_for_a_paid_closed_or_credit_invoice(book: tuple[Snapshot, date]) -> None:
    snapshot, today = book
    result = run(snapshot, today)
    acted = {line.invoice_id for a in result.actions for line in a.lines}
    for inv in snapshot.invoices:
        if inv.closed or inv.open_minor <= 0:
            assert inv.external_id not in acted


@PROPERTY
@given(books())
def test_never_two_steps_for_one_invoice_in_one_plan(book: tuple[Snapshot, date]) -> None:
    snapshot, today = book
    result = run(snapshot, today)
    steps_per_invoice = {(line.invoice_id, a.step) for a in result.actions for line in a.lines}
    assert all(n == 1 for n in Counter(i for i, _ in steps_per_invoice).values())
    assert len(result.decisions) == len(snapshot.invoices)  # every invoice decided once


@PROPERTY
@given(books())
def test_no_costs_or_handoff_for_a_consumer_without_an_expired_veertiendagenbrief(
    book: tuple[Snapshot, date],
) -> None:
    snapshot, today = book
    for action in run(snapshot, today).actions:
        if action.kind is DebtorKind.BUSINESS or not (action.costs or action.role == "handoff"):
            continue
        for line in action.lines:
            wiks = [
                s for s in snapshot.history[("books", line.invoice_id)] if s.role == "wik_notice"
            ]
            assert wiks, "consumer costs or handoff without a veertiendagenbrief"
            receipt = wiks[-1].received_on
            assert receipt is not None
            assert wiks[-1].sent_on > line.due_date
            assert law.veertiendagenbrief_term(receipt).last_day < today


@PROPERTY
@given(books())
def test_same_input_same_plan(book: tuple[Snapshot, date]) -> None:
    snapshot, today = book
    assert run(snapshot, today) == run(snapshot, today)


@PROPERTY
@given(books(), st.integers(1, 60))
def test_advancing_the_clock_never_moves_an_invoice_down_the_ladder(
    book: tuple[Snapshot, date], days: int
) -> None:
    snapshot, today = book
    position = {s.name: i for i, s in enumerate(POLICY.steps)}

    def rung(result: Plan) -> dict[str, int]:
        return {
            d.invoice_id: position[d.next_step] for d in result.decisions if d.next_step in position
        }

    earlier, later = rung(run(snapshot, today)), rung(run(snapshot, today + timedelta(days=days)))
    for invoice_id, index in earlier.items():
        if invoice_id in later:
            assert later[invoice_id] >= index


@LADDER
@given(books())
def test_no_handoff_without_the_lower_steps_in_the_history(book: tuple[Snapshot, date]) -> None:
    """The ladder is never skipped: a handoff follows every step before it that applies to
    the debtor and that the policy does not waive, whatever contact details are missing."""
    snapshot, today = book
    handoff = POLICY.index("handoff")
    assert handoff is not None
    for action in run(snapshot, today).actions:
        if action.role != "handoff":
            continue
        kind = POLICY.kind_of(snapshot.debtors[("books", action.debtor_id)].kind)
        required = {
            s.name
            for s in POLICY.steps[:handoff]
            if s.applies_to(kind) and not s.skip_when_unreachable
        }
        assert "aanmaning" in required
        for line in action.lines:
            taken = {s.step for s in snapshot.history.get(("books", line.invoice_id), ())}
            assert required <= taken, (line.invoice_id, required - taken)


@LADDER
@given(books())
def test_at_most_one_action_per_debtor_channel_and_currency_a_day(
    book: tuple[Snapshot, date],
) -> None:
    snapshot, today = book
    actions = run(snapshot, today).actions
    per = Counter((a.instance, a.debtor_id, a.channel, a.currency) for a in actions)
    assert all(n == 1 for n in per.values()), per
    position = {s.name: i for i, s in enumerate(POLICY.steps)}
    for action in actions:  # the message is at the highest step among its invoices
        stages = [position[line.step or action.step] for line in action.lines]
        assert max(stages) == position[action.step]


@LADDER
@given(books())
def test_a_needs_contact_invoice_gets_nothing_and_says_what_is_missing(
    book: tuple[Snapshot, date],
) -> None:
    snapshot, today = book
    result = run(snapshot, today)
    acted = {line.invoice_id for a in result.actions for line in a.lines}
    for decision in result.decisions:
        if decision.reason is Reason.NEEDS_CONTACT:
            assert decision.invoice_id not in acted
            assert "cannot reach the debtor: no " in decision.detail


@LADDER
@given(books())
def test_every_message_demands_its_invoices_net_of_the_debtors_open_credit_notes(
    book: tuple[Snapshot, date],
) -> None:
    snapshot, today = book
    for action in run(snapshot, today).actions:
        credits = {
            inv.external_id
            for inv in snapshot.invoices
            if inv.debtor_id == action.debtor_id
            and inv.currency == action.currency
            and inv.open_minor < 0
            and not inv.closed
        }
        assert {c.invoice_id for c in action.credits} == credits
        lines = sum(line.principal for line in action.lines)
        assert action.principal == lines + sum(c.principal for c in action.credits) > 0
