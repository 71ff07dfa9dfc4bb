"""Prescription (verjaring): the statutes' terms as worked dates, interruptions restarting
them, and the plan leaving prescribed claims alone with the reason."""

from __future__ import annotations

import json
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from debsync import law
from debsync.cli import app
from debsync.clock import AMSTERDAM, local_date, system_clock
from debsync.decisions import Plan, Reason, explain
from debsync.facts import DebtorFacts, InstanceFacts, InvoiceFacts, Snapshot, StepSent
from debsync.model import DebtorKind
from debsync.policy import DEFAULT_STEPS, Policy, default_policy
from debsync.scheduler import plan

from csv_helpers import write

GENERAL = law.PrescriptionTerm.GENERAL  # art. 3:307 lid 1 BW: five years
SALE = law.PrescriptionTerm.CONSUMER_SALE  # art. 7:28 BW: two years


@pytest.mark.parametrize(
    ("due", "term", "interruptions", "prescribed_on", "interrupted_on"),
    [
        # Five years from the start of the day after the due date: the last day the claim
        # can be enforced is the due date's fifth anniversary.
        (date(2021, 3, 1), GENERAL, (), date(2026, 3, 2), None),
        (date(2021, 12, 31), GENERAL, (), date(2027, 1, 1), None),
        (date(2024, 6, 30), SALE, (), date(2026, 7, 1), None),
        # The term starts on 29 February 2024; two years on there is none: the 28th.
        (date(2024, 2, 28), SALE, (), date(2026, 2, 28), None),
        (date(2023, 2, 28), GENERAL, (), date(2028, 3, 1), None),
        # A written aanmaning received on 10 June 2025 starts a new five years the next day
        # (art. 3:317 lid 1, 3:319 lid 1 BW).
        (date(2021, 3, 1), GENERAL, (date(2025, 6, 10),), date(2030, 6, 11), date(2025, 6, 10)),
        # A consumer sale's new term is again two years (3:319 lid 1: equal to the original).
        (date(2024, 1, 15), SALE, (date(2025, 12, 1),), date(2027, 12, 2), date(2025, 12, 1)),
        # Each interruption restarts the term; the last one counts.
        (
            date(2020, 5, 4),
            SALE,
            (date(2022, 3, 1), date(2021, 4, 1)),
            date(2024, 3, 2),
            date(2022, 3, 1),
        ),
        # Too late: the claim had prescribed on 16 January 2022; nothing revives it.
        (date(2020, 1, 15), SALE, (date(2023, 1, 1),), date(2022, 1, 16), None),
        # A reminder before the due date interrupts no running term.
        (date(2024, 1, 15), SALE, (date(2024, 1, 10),), date(2026, 1, 16), None),
        # An interruption on the due date itself changes nothing (the term starts the next day)
        # and never shortens it (3:319 lid 2).
        (date(2021, 3, 1), GENERAL, (date(2021, 3, 1),), date(2026, 3, 2), date(2021, 3, 1)),
    ],
)
def test_the_statutory_terms_as_worked_dates(
    due: date,
    term: law.PrescriptionTerm,
    interruptions: tuple[date, ...],
    prescribed_on: date,
    interrupted_on: date | None,
) -> None:
    found = law.prescription(due, term, interruptions)
    assert (found.prescribed_on, found.interrupted_on) == (prescribed_on, interrupted_on)
    assert not found.applies(prescribed_on - timedelta(days=1))
    assert found.applies(prescribed_on)


def test_add_years_keeps_the_day_and_ends_a_leap_day_early() -> None:
    assert law.prescription(date(2019, 2, 27), GENERAL).prescribed_on == date(2024, 2, 28)
    assert law.prescription(date(2023, 2, 27), SALE).prescribed_on == date(2025, 2, 28)


TODAY = date(2026, 12, 1)


def run(
    *invoices: InvoiceFacts,
    kind: DebtorKind = DebtorKind.BUSINESS,
    policy: Policy | None = None,
    history: dict[str, list[StepSent]] | None = None,
) -> Plan:
    now = datetime.combine(TODAY, time(9, 0), tzinfo=AMSTERDAM)
    snapshot = Snapshot(
        invoices=list(invoices),
        debtors={("books", "D1"): DebtorFacts("books", "D1", kind)},
        instances={"books": InstanceFacts("books", "default", now - timedelta(hours=1))},
        history={("books", k): v for k, v in (history or {}).items()},
    )
    return plan(snapshot, {"default": policy or default_policy()}, now)


def inv(number: str, due: date) -> InvoiceFacts:
    return InvoiceFacts("books", number, number, "D1", due, "EUR", 48_400)


def reasons(result: Plan) -> dict[str, Reason]:
    return {d.number: d.reason for d in result.decisions}


def test_a_business_claim_prescribes_after_five_years_a_consumer_sale_after_two() -> None:
    book = (
        inv("1926-0001", date(1926, 2, 3)),
        inv("B5", date(2021, 11, 30)),  # prescribed since 2026-12-01, today
        inv("B4", date(2021, 12, 1)),  # enforceable until today's end
        inv("C2", date(2024, 11, 30)),
    )
    business = run(*book)
    assert reasons(business) == {
        "1926-0001": Reason.PRESCRIBED,
        "B5": Reason.PRESCRIBED,
        "B4": Reason.PLANNED,
        "C2": Reason.PLANNED,
    }
    (why,) = [explain(d) for d in business.decisions if d.number == "B5"]
    assert "prescribed since 2026-12-01 (art. 3:307 BW: 5 years from the day after the due " in why

    consumer = run(*book, kind=DebtorKind.CONSUMER)
    assert reasons(consumer)["C2"] is Reason.PRESCRIBED
    (why,) = [d.detail for d in consumer.decisions if d.number == "C2"]
    assert why.startswith("prescribed since 2026-12-01 (art. 7:28 BW: 2 years")


def test_unknown_kind_gets_the_consumer_term_and_services_get_five_years() -> None:
    claim = inv("C2", date(2024, 11, 30))
    assert reasons(run(claim, kind=DebtorKind.UNKNOWN))["C2"] is Reason.PRESCRIBED
    business_like = default_policy().model_copy(update={"unknown_kind": "business"})
    assert reasons(run(claim, kind=DebtorKind.UNKNOWN, policy=business_like))["C2"] is (
        Reason.PRESCRIBED
    )
    services = default_policy().model_copy(update={"consumer_sales": False})
    assert reasons(run(claim, kind=DebtorKind.CONSUMER, policy=services))["C2"] is not (
        Reason.PRESCRIBED
    )


def test_a_veertiendagenbrief_interrupts_and_the_term_starts_again() -> None:
    claim = inv("C2", date(2024, 11, 30))
    wik = StepSent(
        "veertiendagenbrief", date(2026, 2, 2), role="wik_notice", received_on=date(2026, 2, 4)
    )
    reminder = StepSent("reminder", date(2026, 3, 2))
    result = run(claim, kind=DebtorKind.CONSUMER, history={"C2": [reminder, wik]})
    assert reasons(result)["C2"] is not Reason.PRESCRIBED  # until 2028-02-05

    # A reminder by e-mail is not counted unless the policy says it is a written aanmaning.
    assert reasons(run(claim, kind=DebtorKind.CONSUMER, history={"C2": [reminder]}))["C2"] is (
        Reason.PRESCRIBED
    )
    counted = default_policy().model_copy(update={"interrupting_steps": ("reminder",)})
    assert (
        reasons(run(claim, kind=DebtorKind.CONSUMER, policy=counted, history={"C2": [reminder]}))[
            "C2"
        ]
        is not Reason.PRESCRIBED
    )


def test_the_policy_records_an_interruption_outside_debsync() -> None:
    text = """
    interruptions = { "B5" = 2024-05-01 }
    interrupting_steps = ["aanmaning", "veertiendagenbrief"]
    """
    table = tomllib.loads(text)
    policy = Policy.model_validate({**table, "name": "default", "steps": DEFAULT_STEPS})
    assert policy.interruptions == {"B5": date(2024, 5, 1)}
    result = run(inv("B5", date(2021, 11, 30)), inv("B6", date(2021, 11, 30)), policy=policy)
    assert reasons(result) == {"B5": Reason.PLANNED, "B6": Reason.PRESCRIBED}


def test_interrupting_steps_must_name_steps_of_the_policy() -> None:
    with pytest.raises(ValueError, match=r"interrupting_steps names no step .*'aanmaningen'"):
        Policy.model_validate({"steps": DEFAULT_STEPS, "interrupting_steps": ["aanmaningen"]})


def test_plan_and_status_list_the_prescribed_invoices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = local_date(system_clock())
    old, recent = today - timedelta(days=6 * 366), today - timedelta(days=20)
    debtor = ["D1", "Bouwbedrijf 't Gooi B.V.", "Zakelijk", "info@gooi.example.nl"]
    header = ["Relatiecode", "Naam", "Soort", "E-mail", "Factuurnummer", "Vervaldatum"]
    write(
        tmp_path / "open.csv",
        [
            [*header, "Openstaand"],
            [*debtor, "2019-0007", f"{old:%d-%m-%Y}", "48,40"],
            [*debtor, "2026-0311", f"{recent:%d-%m-%Y}", "121,00"],
        ],
    )
    (tmp_path / "connectors.toml").write_text(
        '[creditor]\nname = "Voorbeeld B.V."\n\n[connectors.books]\ntype = "csv"\n'
        'path = "open.csv"\n\n[actions.files]\ntype = "file"\ndirectory = "outbox"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEBSYNC_CONFIG", raising=False)
    monkeypatch.delenv("DEBSYNC_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["sync"]).exit_code == 0

    planned = json.loads(runner.invoke(app, ["plan", "--json"]).stdout)
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    human = runner.invoke(app, ["plan"]).stdout

    for listed in (planned["prescribed"], status["prescribed"]):
        assert [(p["debtor"], p["number"]) for p in listed] == [("D1", "2019-0007")]
        assert listed[0]["detail"].startswith("prescribed since ")
    assert [line["number"] for a in planned["actions"] for line in a["invoices"]] == ["2026-0311"]
    assert "prescribed, not dunned: 1 invoice(s)" in human
    assert "books/D1 2019-0007: prescribed since" in human
