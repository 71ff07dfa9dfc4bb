"""The columnar plan equals the reference ``scheduler.plan()``: every action, decision, reason
and warning, on random books and on the cases it routes to the reference loop."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from debsync import law
from debsync.clock import AMSTERDAM
from debsync.columnar import from_snapshot
from debsync.columnar_plan import plan as columnar_plan
from debsync.decisions import Plan
from debsync.facts import (
    DebtorFacts,
    Instalment,
    InstanceFacts,
    InvoiceFacts,
    Pause,
    PauseKind,
    PendingStep,
    Snapshot,
    StepSent,
)
from debsync.model import DebtorKind, Language
from debsync.planning import load_snapshot
from debsync.planning_columnar import load_book
from debsync.policy import Policy, Step, default_policy
from debsync.scheduler import plan
from debsync.store import Store
from debsync.store.schema import EventKind, connector_state, debtors, events, invoices

DEFAULT = default_policy()
BRISK = Policy(
    name="brisk",
    steps=(
        Step(name="courtesy", channels=("email",), days_after_due=-3, skip_when_unreachable=True),
        Step(name="reminder", channels=("email", "sms"), days_after_due=2, min_days_overdue=3),
        Step(name="aanmaning", channels=("letter",), days_after_previous=5),
        Step(
            name="veertiendagenbrief",
            channels=("letter", "email"),
            days_after_previous=3,
            role="wik_notice",
            kinds=(DebtorKind.CONSUMER, DebtorKind.UNKNOWN),
        ),
        Step(name="handoff", channels=("agency",), days_after_due=40, role="handoff"),
    ),
    min_open_amount=25,
    unknown_kind="business",
)
POLICIES = {"default": DEFAULT, "brisk": BRISK}
START = date(2025, 1, 1)
NOW = datetime(2026, 3, 18, 9, 0, tzinfo=AMSTERDAM)


@st.composite
def books(draw: st.DrawFn) -> tuple[Snapshot, datetime, bool]:
    """A random book over two instances (one maybe stale, one with an unknown policy for some
    debtors), with partial payments, credit notes, currencies, direct debits, steps in and out
    of order, steps a source recorded, pauses of every scope and kind, actions under way and
    messages already sent today."""
    today = START + timedelta(days=draw(st.integers(0, 900)))
    now = datetime.combine(today, time(9, 0), tzinfo=AMSTERDAM)
    synced = now - timedelta(hours=draw(st.sampled_from([1, 2, 30])))
    instances = {
        "books": InstanceFacts("books", "default", synced, "moneybird"),
        "shop": InstanceFacts("shop", "brisk", now - timedelta(hours=1)),
    }
    debtors: dict[tuple[str, str], DebtorFacts] = {}
    for i in range(draw(st.integers(1, 7))):
        inst = draw(st.sampled_from(list(instances)))
        debtors[(inst, f"D{i}")] = DebtorFacts(
            inst,
            f"D{i}",
            draw(st.sampled_from(list(DebtorKind))),
            Language.NL,
            draw(st.sampled_from([None] * 6 + ["brisk", "default", "brisk", "default", "missing"])),
            frozenset(draw(st.sets(st.sampled_from(["email", "letter", "call", "sms"])))),
        )
    keys = list(debtors)
    invoices: list[InvoiceFacts] = []
    history: dict[tuple[str, str], list[StepSent]] = {}
    for n in range(draw(st.integers(1, 16))):
        inst, debtor = draw(st.sampled_from(keys))
        if draw(st.integers(0, 14)) == 0:
            debtor = "nobody"  # a debtor the store does not hold
        late = st.integers(-20, 120)
        due = today - timedelta(days=draw(st.one_of(late, late, late, st.integers(0, 900))))
        number = f"F{n}"
        invoices.append(
            InvoiceFacts(
                inst,
                f"id{n}",
                number,
                debtor,
                due,
                draw(st.sampled_from(["EUR", "EUR", "EUR", "USD"])),
                draw(st.one_of(st.just(0), st.integers(-30_000, 400_000))),
                draw(st.integers(0, 5)) == 0,
                draw(st.integers(0, 12)) == 0,
                draw(st.booleans()),
                draw(st.integers(0, 10)) == 0,
            )
        )
        policy = POLICIES.get(debtors.get((inst, debtor), DebtorFacts(inst, debtor)).policy or "")
        names = list((policy or POLICIES[instances[inst].policy]).steps)
        steps, day = [], due - timedelta(days=4)
        for step in names:
            if draw(st.integers(0, 5)) == 0:
                continue  # a step left out: the handoff guard decides
            day += timedelta(days=draw(st.integers(0, 20)))
            if day > today or draw(st.integers(0, 3)) == 0:
                break
            role = step.role
            name = draw(st.sampled_from([step.name] * 40 + ["retired-step"]))
            received = law.presumed_receipt(day, "letter") if role == "wik_notice" else None
            costs = draw(st.sampled_from([None, 4000])) if role == "wik_notice" else None
            elsewhere = draw(st.sampled_from([None] * 40 + ["csv"]))
            steps.append(StepSent(name, day, role, received, costs, elsewhere))
        if steps:
            history[(inst, f"id{n}")] = steps
    rows = [(inv.instance, inv.external_id) for inv in invoices]
    pauses = [
        Pause(
            f"P{k}",
            kind,
            inst,
            scope,
            target,
            "reason",
            "someone",
            now - timedelta(days=k),
            until=today + timedelta(days=draw(st.integers(-10, 10))),
            instalments=(Instalment(today - timedelta(days=5), 1000),),
            balance_minor=draw(st.sampled_from([None, 5000, 1_000_000])),
        )
        for k, (kind, (inst, scope, target)) in enumerate(
            draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(list(PauseKind)),
                        st.one_of(
                            st.sampled_from([(i, "instance", i) for i in instances]),
                            st.sampled_from([(i, "debtor", d) for i, d in keys]),
                            st.sampled_from([(i, "invoice", e) for i, e in rows]),
                        ),
                    ),
                    max_size=draw(st.sampled_from([0, 0, 0, 1, 2])),
                )
            )
        )
    ]
    step_names = ["reminder", "aanmaning", "handoff", "nonesuch"]
    rare = draw(st.sampled_from([0, 0, 0, 1, 2]))
    pending = {
        row: PendingStep(
            f"K{k}",
            draw(st.sampled_from(step_names)),
            "email",
            draw(st.sampled_from(["queued", "awaiting_approval", "dead", "cancelled", "sent"])),
            draw(st.booleans()),
        )
        for k, row in enumerate(draw(st.lists(st.sampled_from(rows), max_size=rare)))
    }
    messaged = {
        (inst, debtor, channel): f"M{inst}{debtor}"
        for inst, debtor in draw(st.lists(st.sampled_from(keys), max_size=2))
        for channel in ("email", "letter")
    }
    snapshot = Snapshot(invoices, debtors, instances, history, pauses, pending, messaged)
    return snapshot, now, draw(st.booleans())


def both(snapshot: Snapshot, now: datetime, check_freshness: bool = True) -> tuple[Plan, Plan]:
    expected = plan(snapshot, POLICIES, now, check_freshness=check_freshness)
    found = columnar_plan(from_snapshot(snapshot), POLICIES, now, check_freshness=check_freshness)
    return expected, found


def assert_equal(expected: Plan, found: Plan) -> None:
    assert found.today == expected.today
    assert found.actions == expected.actions
    assert found.warnings == expected.warnings
    assert len(found.decisions) == len(expected.decisions)
    assert list(found.decisions) == list(expected.decisions)


@settings(max_examples=250, deadline=None)
@given(books())
def test_the_columnar_plan_equals_the_reference(book: tuple[Snapshot, datetime, bool]) -> None:
    snapshot, now, fresh = book
    assert_equal(*both(snapshot, now, fresh))


def steady_book(consumer: bool) -> Snapshot:
    """One debtor per ladder position: every step sent on its day, the next one due today,
    tomorrow or long ago; the plain case the vectorised pass settles without the loop."""
    today = NOW.date()
    invoices, history, debtors = [], {}, {}
    kind = DebtorKind.CONSUMER if consumer else DebtorKind.BUSINESS
    for n, overdue in enumerate(range(-5, 80)):
        due = today - timedelta(days=overdue)
        debtor = f"D{n}"
        debtors[("books", debtor)] = DebtorFacts("books", debtor, kind)
        invoices.append(InvoiceFacts("books", f"id{n}", f"F{n}", debtor, due, "EUR", 50_000))
        steps, day = [], due
        for step in DEFAULT.steps:
            if not step.applies_to(kind):
                continue
            day = (
                due + timedelta(days=step.days_after_due)
                if step.days_after_due is not None
                else day + timedelta(days=step.days_after_previous or 0)
            )
            if day >= today:
                break
            received = law.presumed_receipt(day, "letter") if step.role else None
            steps.append(StepSent(step.name, day, step.role, received))
        if steps:
            history[("books", f"id{n}")] = steps
    instances = {"books": InstanceFacts("books", "default", NOW - timedelta(hours=1))}
    return Snapshot(invoices, debtors, instances, history)


@pytest.mark.parametrize("consumer", [False, True])
def test_a_steady_state_ladder(consumer: bool) -> None:
    expected, found = both(steady_book(consumer), NOW)
    assert expected.actions, "the book has steps due today"
    assert_equal(expected, found)


def edge(snapshot: Snapshot, **changes: object) -> Snapshot:
    fields = vars(snapshot) | changes
    return Snapshot(**fields)  # type: ignore[arg-type]


ROUTED = {
    "a dispute on one invoice": lambda s: edge(
        s,
        pauses=[
            Pause("P1", PauseKind.DISPUTE, "books", "invoice", "id30", "x", "a", NOW),
        ],
    ),
    "an instance on hold": lambda s: edge(
        s,
        pauses=[
            Pause("P2", PauseKind.HOLD, "books", "instance", "books", "x", "a", NOW, NOW.date()),
        ],
    ),
    "a payment plan for a debtor": lambda s: edge(
        s,
        pauses=[
            Pause(
                "P3",
                PauseKind.PAYMENT_PLAN,
                "books",
                "debtor",
                "D40",
                "x",
                "a",
                NOW,
                instalments=(Instalment(NOW.date() - timedelta(days=1), 100),),
                balance_minor=60_000,
            ),
        ],
    ),
    "an action under way": lambda s: edge(
        s, pending={("books", "id20"): PendingStep("K1", "aanmaning", "email", "queued")}
    ),
    "a debtor messaged today": lambda s: edge(
        s, messaged_today={("books", "D9", "email"): "K2", ("books", "D22", "call"): "K3"}
    ),
    "a step recorded elsewhere": lambda s: edge(
        s,
        history=s.history
        | {
            ("books", "id12"): [
                StepSent("reminder", NOW.date() - timedelta(days=9), None, None, None, "csv")
            ]
        },
    ),
    "a step no policy knows": lambda s: edge(
        s,
        history=s.history
        | {("books", "id12"): [StepSent("retired", NOW.date() - timedelta(days=9))]},
    ),
    "foreign currency and a credit note": lambda s: edge(
        s,
        invoices=[
            *s.invoices,
            InvoiceFacts("books", "c1", "C1", "D20", NOW.date(), "USD", 90_000),
            InvoiceFacts("books", "c2", "C2", "D20", NOW.date(), "EUR", -10_000),
        ],
    ),
    "a claim old enough to prescribe": lambda s: edge(
        s,
        invoices=[
            *s.invoices,
            InvoiceFacts("books", "old", "O1", "D20", date(2022, 1, 5), "EUR", 90_000),
        ],
    ),
    "an unknown policy": lambda s: edge(
        s, debtors=s.debtors | {("books", "D30"): DebtorFacts("books", "D30", policy="nope")}
    ),
}


@pytest.mark.parametrize("case", ROUTED, ids=list(ROUTED))
@pytest.mark.parametrize("consumer", [False, True])
def test_the_cases_routed_to_the_reference_loop(case: str, consumer: bool) -> None:
    assert_equal(*both(ROUTED[case](steady_book(consumer)), NOW))


def test_stale_data_and_a_preview() -> None:
    book = steady_book(True)
    later = NOW + timedelta(days=3)
    assert_equal(*both(book, later))  # the sync is too old: data_too_old for every invoice
    assert_equal(*both(book, later, check_freshness=False))


def test_the_book_loaded_from_the_store_plans_as_the_snapshot_does(store: Store) -> None:
    """``load_book`` reads what ``load_snapshot`` reads, on SQLite and PostgreSQL: contact
    details that drop channels, a debtor the store lacks, paid invoices, currencies, steps
    sent (a veertiendagenbrief with its receipt and costs) and a step a source recorded."""
    now = NOW.astimezone(UTC)
    today = NOW.date()
    fingerprint = bytes(16)
    contacts = [
        (["a@example.nl"], ["+31612345678"], {"lines": ["Kerkstraat 8"], "city": "Zwolle"}),
        ([], ["+31201234567"], None),
        (["c@example.nl"], [], {"lines": [], "city": "Zwolle"}),
        (["d@example.nl"], ["+3212345678"], {"lines": ["Rue 1"], "city": "Gent"}),
    ]
    debtor_rows = [
        {
            "instance": "books",
            "external_id": f"D{k}",
            "name": "x",
            "kind": ["business", "consumer", "unknown", "consumer"][k],
            "emails": emails,
            "phones": phones,
            "language": "nl",
            "address": address,
            "kvk": None,
            "vat": None,
            "iban": None,
            "fingerprint": fingerprint,
            "created_at": now,
            "updated_at": now,
        }
        for k, (emails, phones, address) in enumerate(contacts)
    ]
    invoice_rows, event_rows = [], []
    for n in range(40):
        due = today - timedelta(days=(n * 7) % 90 - 10)
        invoice_rows.append(
            {
                "instance": "books",
                "external_id": f"id{n}",
                "number": f"F{n}",
                "debtor_id": f"D{n % 5}",  # D4 is not in the debtors table
                "issue_date": due - timedelta(days=30),
                "due_date": due,
                "currency": "USD" if n % 11 == 0 else "EUR",
                "total_minor": 90_000,
                "open_minor": -5_000 if n % 13 == 0 else 1_000 * n,
                "payment_reference": None,
                "payment_url": None,
                "direct_debit": n % 17 == 0,
                "has_document": False,
                "state": "closed" if n % 9 == 0 else "open",
                "closed_at": None,
                "fingerprint": fingerprint,
                "created_at": now,
                "updated_at": now,
            }
        )
        day = due
        for step in DEFAULT.steps[: n % 5]:
            day += timedelta(days=step.days_after_previous or 1)
            if day >= today:
                break
            wik = step.role == "wik_notice"
            data = {
                "step": step.name,
                "sent_on": day.isoformat(),
                "role": step.role,
                "received_on": law.presumed_receipt(day, "letter").isoformat() if wik else None,
                "stated_costs_minor": 4000 if wik else None,
            }
            event_rows.append(
                {
                    "at": now,
                    "instance": "books",
                    "debtor_id": f"D{n % 5}",
                    "invoice_id": f"id{n}",
                    "kind": EventKind.STEP_SENT,
                    "data": data,
                }
            )
    recorded = {"step": "reminder", "sent_on": (today - timedelta(days=20)).isoformat()}
    event_rows.append(
        {
            "at": now,
            "instance": "books",
            "debtor_id": "D3",
            "invoice_id": "id3",
            "kind": EventKind.STEP_RECORDED_ELSEWHERE,
            "data": recorded | {"source": "books"},
        }
    )
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(connector_state).values(instance="books", type="csv", last_success_at=now)
        )
        conn.execute(sa.insert(debtors), debtor_rows)
        conn.execute(sa.insert(invoices), invoice_rows)
        conn.execute(sa.insert(events), event_rows)
    args = ({"books": "default"}, {("books", "D1"): "brisk"})
    options: dict[str, Any] = {"sources": {"books": "csv"}, "today": today, "policies": POLICIES}
    snapshot = load_snapshot(store, *args, **options)
    assert any(s.elsewhere for h in snapshot.history.values() for s in h)
    expected = plan(snapshot, POLICIES, NOW)
    found = columnar_plan(load_book(store, *args, **options), POLICIES, NOW)
    assert expected.actions
    assert_equal(expected, found)
