"""The ladder is never skipped: a step that cannot reach the debtor falls back to a letter or
a call task, or the invoice waits as "needs contact details"; a handoff follows the lower
steps the policy requires (issue 11, item 1)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from debsync.decisions import Plan, Reason
from debsync.facts import DebtorFacts, InstanceFacts, Snapshot, StepSent
from debsync.ladder import Ladder, Unreachable
from debsync.model import DebtorKind
from debsync.policy import Policy, Step, default_policy
from test_cli import TODAY, as_json, debsync
from test_cli import project as cli_project
from test_scheduler import DUE, at, book, inv, reasons, run, sent

NOTHING = frozenset({"email", "letter", "call", "sms"})
NO_EMAIL_NO_ADDRESS = frozenset({"email", "letter"})


def contacts(snapshot: Snapshot, unreachable: frozenset[str]) -> Snapshot:
    snapshot.debtors = {
        key: d._replace(unreachable=unreachable) for key, d in snapshot.debtors.items()
    }
    return snapshot


def walk(snapshot: Snapshot, days: int) -> tuple[list[tuple[str, str]], Plan]:
    """Plan every day for ``days`` days after the due date, recording each step as sent the
    day it is planned (as the outbox would); the (step, channel) pairs in order."""
    taken: list[tuple[str, str]] = []
    result = run(snapshot, DUE)
    for offset in range(1, days + 1):
        day = DUE + timedelta(days=offset)
        synced = at(day) - timedelta(hours=1)
        snapshot.instances = {"books": InstanceFacts("books", "default", synced)}
        result = run(snapshot, day)
        for action in result.actions:
            taken.append((action.step, action.channel))
            for line in action.lines:
                key = ("books", line.invoice_id)
                history = list(snapshot.history.get(key, ()))
                if line.step not in {s.step for s in history}:
                    history.append(StepSent(line.step or action.step, day, action.role))
                snapshot.history = {**snapshot.history, key: history}
    return taken, result


def test_a_debtor_without_email_or_address_is_not_handed_off_but_needs_contact_details() -> None:
    """The issue's `b/10002 │ handoff (approval) │ agency │ V-1 │ EUR 48,400.00`."""
    snapshot = contacts(book(inv("V-1", "48400.00")), NOTHING)
    result = run(snapshot, DUE + timedelta(days=90))

    assert result.actions == []
    (decision,) = result.decisions
    assert decision.reason is Reason.NEEDS_CONTACT
    assert decision.next_step == "reminder"
    assert "no e-mail address, postal address, phone number" in decision.detail
    assert "D1" not in decision.detail  # ids live in the decision's fields, the detail says what


def test_without_email_the_reminder_and_aanmaning_go_by_letter_and_the_calls_are_waived() -> None:
    snapshot = contacts(book(inv("F1")), frozenset({"email", "call", "sms"}))
    taken, _ = walk(snapshot, 40)
    assert taken == [("reminder", "letter"), ("aanmaning", "letter"), ("handoff", "agency")]


def test_with_only_a_phone_the_written_steps_become_call_tasks() -> None:
    snapshot = contacts(book(inv("F1")), NO_EMAIL_NO_ADDRESS)
    taken, _ = walk(snapshot, 40)
    steps = [step for step, _ in taken]
    assert steps == ["reminder", "call", "aanmaning", "final-call", "handoff"]
    assert {channel for step, channel in taken if step != "handoff"} == {"call"}


def test_a_consumer_without_a_postal_address_waits_at_the_veertiendagenbrief() -> None:
    snapshot = contacts(book(inv("F1"), kind=DebtorKind.CONSUMER), frozenset({"letter"}))
    taken, result = walk(snapshot, 60)
    assert [s for s, _ in taken] == ["reminder", "call", "aanmaning"]
    (decision,) = result.decisions
    assert decision.reason is Reason.NEEDS_CONTACT and decision.next_step == "veertiendagenbrief"
    assert "postal address" in decision.detail


def test_a_handoff_needs_the_aanmaning_in_the_history() -> None:
    history = {
        "F1": [
            sent("reminder", DUE + timedelta(days=1)),
            sent("final-call", DUE + timedelta(days=25)),
        ]
    }
    result = run(book(inv("F1"), history=history), DUE + timedelta(days=60))
    assert result.actions == []
    (decision,) = result.decisions
    assert decision.reason is Reason.LOWER_STEP_MISSING
    assert "aanmaning" in decision.detail


def test_a_policy_may_waive_a_step_explicitly() -> None:
    policy = Policy(
        name="default",
        steps=(
            Step(name="reminder", channels=("email",), days_after_due=1, fallback_channels=()),
            Step(
                name="aanmaning",
                channels=("email",),
                days_after_previous=7,
                fallback_channels=(),
                skip_when_unreachable=True,
            ),
            Step(
                name="handoff",
                channels=("agency",),
                days_after_previous=7,
                role="handoff",
                kinds=(DebtorKind.BUSINESS,),
            ),
        ),
    )
    waived = Ladder(policy, DebtorKind.BUSINESS, frozenset({"email"}))
    first = waived.after[-1]
    assert isinstance(first, Unreachable) and first.step.name == "reminder"  # not waivable
    after_reminder = waived.after[0]
    assert after_reminder is not None and not isinstance(after_reminder, Unreachable)
    assert after_reminder.step.name == "handoff" and after_reminder.required == {"reminder"}


@pytest.mark.parametrize(
    ("unreachable", "channels"),
    [
        (frozenset(), ("email",)),
        (frozenset({"email"}), ("letter",)),
        (frozenset({"email", "letter"}), ("call",)),
    ],
)
def test_the_fallback_is_the_first_reachable_channel(
    unreachable: frozenset[str], channels: tuple[str, ...]
) -> None:
    rung = Ladder(default_policy(), DebtorKind.BUSINESS, unreachable).after[-1]
    assert rung is not None and not isinstance(rung, Unreachable)
    assert rung.channels == channels


def test_needs_contact_details_is_listed_in_the_plan_decisions_once_per_invoice() -> None:
    snapshot = contacts(book(inv("F1"), inv("F2")), NOTHING)
    snapshot.debtors = {
        **snapshot.debtors,
        ("books", "D2"): DebtorFacts("books", "D2", DebtorKind.BUSINESS),
    }
    snapshot.invoices = [*snapshot.invoices, inv("G1", debtor="D2")]
    result = run(snapshot, DUE + timedelta(days=3))
    assert reasons(result) == {
        "F1": Reason.NEEDS_CONTACT,
        "F2": Reason.NEEDS_CONTACT,
        "G1": Reason.PLANNED,
    }


project = pytest.fixture(cli_project.__wrapped__, name="project")  # type: ignore[attr-defined]


def test_status_and_plan_list_the_invoices_that_need_contact_details(project: Path) -> None:
    """An Exact- or Twinfield-shaped row without e-mail, phone or address, long overdue."""
    export = project / "open-items.csv"
    text = export.read_text(encoding="utf-8-sig")
    due = TODAY - timedelta(days=90)
    bare = ["10002", "Bouwbedrijf Noord B.V.", "Zakelijk", "", "", "", "", "", "nl", "V-1"]
    bare += [f"{due - timedelta(days=30):%d-%m-%Y}", f"{due:%d-%m-%Y}", "48.400,00"]
    typo = ["10003", "Jan Bakker", "Particulier", "jan@localhost", "", "Dorpsstraat 2"]
    typo += ["1234 AB", "Utrecht", "nl", "V-2", bare[-3], bare[-2], "250,00"]
    rows = ";".join(bare) + "\r\n" + ";".join(typo) + "\r\n"
    export.write_text(text + rows, encoding="utf-8-sig")
    debsync("sync")

    plan = as_json("plan")
    assert all(a["debtor"] != "10002" for a in plan["actions"])  # no handoff, nothing at all
    (repaired,) = [a for a in plan["actions"] if a["debtor"] == "10003"]  # jan@localhost
    assert (repaired["step"], repaired["channel"]) == ("reminder", "letter")
    (needing,) = plan["needs_contact"]
    assert (needing["debtor"], needing["number"], needing["step"]) == ("10002", "V-1", "reminder")
    assert "no e-mail address, postal address, phone number" in needing["detail"]
    assert "Bouwbedrijf" not in needing["detail"]
    assert "needs contact details: 1 invoice(s) of 1 debtor(s)" in debsync("plan").stdout
    status = as_json("status")
    assert [n["number"] for n in status["needs_contact"]] == ["V-1"]
