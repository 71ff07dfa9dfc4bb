"""Debtor kind: a legal form in the name, a KvK or a VAT number makes a business; what stays
unknown is treated as the policy's ``unknown_kind`` says and listed by ``status`` and ``plan``."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from debsync import law
from debsync.claims import build_action
from debsync.cli import app
from debsync.clock import AMSTERDAM, local_date, system_clock
from debsync.facts import DebtorFacts, InstanceFacts, InvoiceFacts, Snapshot, StepSent
from debsync.kinds import business_evidence, infer_kind, is_kvk_number, is_vat_number, legal_form
from debsync.model import DebtorKind
from debsync.policy import Policy, Step
from debsync.scheduler import plan

from csv_helpers import read, write

B, U = DebtorKind.BUSINESS, DebtorKind.UNKNOWN


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("Bouwbedrijf 't Gooi B.V.", "B.V."),
        ("Jansen BV", "BV"),
        ("BV De Hoek", "BV"),
        ("Jansen b.v", "b.v"),
        ("Invest BV.", "BV."),
        ("Bakker Beheer B.V. i.o.", "B.V."),
        ("De Vries N.V.", "N.V."),
        ("Koninklijke Dekker NV", "NV"),
        ("Piet & Klaas V.O.F.", "V.O.F."),
        ("Snackbar Piet vof", "vof"),
        ("Bakker & Zn. C.V.", "C.V."),
        ("Loonbedrijf Hendriks CV", "CV"),
        ("Stichting Vrienden van het Rijksmuseum", "Stichting"),
        ("Vereniging van Eigenaren Parkzicht", "Vereniging"),
        ("VvE Parkzicht", "VvE"),
        ("Coöperatie De Korf U.A.", "Coöperatie"),
        ("COÖPERATIEVE RABOBANK", "COÖPERATIEVE"),
        ("Maatschap Huisartsen Oost", "Maatschap"),
        ("Jansen Holding", "Holding"),
        ("Siemens AG", "AG"),
        ("Schmidt Logistik GmbH", "GmbH"),
        ("Oak & Ivy Consulting Ltd", "Ltd"),
        ("Brasserie Bruxelles BVBA", "BVBA"),
        # no legal form: a person, a trade name, look-alikes
        ("Jan de Vries", None),
        ("J.B.V. Smit", None),
        ("Mr. B. V. Smit", None),
        ("B.V. de Wit", None),  # initials
        ("C.V. Bakker", None),
        ("E.V. de Jong", None),
        ("S.A. de Vries", None),
        ("N.V. de Wit Installaties B.V.", "B.V."),
        ("n.v.t.", None),
        ("Bvlgari", None),
        ("CV-monteur Jansen", None),
        ("Jansen CV-ketels", None),
        ("Navo Evenementen", None),
        ("Ingrid Novak", None),
        ("Bakkerij De Gouden Korrel", None),
        ("Stichtingsweg Fietsen", None),
        ("", None),
    ],
)
def test_legal_form_in_the_name(name: str, form: str | None) -> None:
    assert legal_form(name) == form
    assert infer_kind(name) is (B if form else U)


@pytest.mark.parametrize(
    ("kvk", "vat", "kind"),
    [
        ("12345678", None, B),
        ("1234 5678", None, B),
        ("12.34.56.78", None, B),
        (None, "NL123456789B01", B),
        (None, "nl 1234.56.789.B.01", B),
        (None, "BE0123456789", B),
        (None, "DE123456789", B),
        ("n.v.t.", "n.v.t.", U),  # "niet van toepassing": what consumer rows carry
        ("-", "-", U),
        ("nvt", "geen", U),
        ("1234567", None, U),  # seven digits: not a KvK number
        (None, "NL", U),
        (None, None, U),
    ],
)
def test_kvk_and_vat_numbers(kvk: str | None, vat: str | None, kind: DebtorKind) -> None:
    assert infer_kind("J. Jansen", kvk, vat) is kind


def test_evidence_says_why() -> None:
    assert business_evidence("Bouwbedrijf 't Gooi B.V.") == "legal form 'B.V.' in the name"
    assert business_evidence("Gooi", kvk="12345678") == "a KvK number"
    assert business_evidence("Gooi", vat="NL123456789B01") == "a VAT number"
    assert business_evidence("Gooi", kvk="n.v.t.") is None
    assert is_kvk_number("87654321") and not is_kvk_number("8765432a")
    assert is_vat_number("NL001234567B01") and not is_vat_number("onbekend")


def test_the_csv_connector_infers_the_kind(tmp_path: Path) -> None:
    rows = [
        ["Relatiecode", "Naam", "Soort", "KvK", "Factuurnummer", "Vervaldatum", "Openstaand"],
        ["10001", "Bouwbedrijf 't Gooi B.V.", "", "", "F-1", "01-11-2026", "100,00"],
        ["10002", "J. Jansen", "", "n.v.t.", "F-2", "01-11-2026", "100,00"],
        ["10003", "Gooi Bouw", "", "12345678", "F-3", "01-11-2026", "100,00"],
        ["10004", "Stichting Vrienden", "Particulier", "", "F-4", "01-11-2026", "100,00"],
    ]
    debtors = read(write(tmp_path / "open.csv", rows)).debtors
    kinds = {d: debtors[d].kind for d in debtors}
    assert kinds == {
        "10001": B,
        "10002": U,
        "10003": B,
        "10004": DebtorKind.CONSUMER,  # the export's own column wins over the name
    }


# -- unknown_kind in the ladder and the claim -------------------------------------------------

DUE = date(2026, 10, 1)
STEPS = (
    Step(name="aanmaning", channels=("email",), days_after_due=14, claim_interest=True),
    Step(
        name="veertiendagenbrief",
        channels=("letter",),
        days_after_previous=7,
        kinds=(DebtorKind.CONSUMER, DebtorKind.UNKNOWN),
        role="wik_notice",
    ),
    Step(name="laatste", channels=("email",), days_after_previous=7, claim_costs=True),
)


def policy(**settings: Any) -> Policy:
    return Policy(name="default", steps=STEPS, **settings)


def unknown_debtor() -> DebtorFacts:
    return DebtorFacts("books", "D1", DebtorKind.UNKNOWN)


def invoice() -> InvoiceFacts:
    return InvoiceFacts("books", "F-1", "F-1", "D1", DUE, "EUR", 100_000)


def test_unknown_is_a_consumer_by_default() -> None:
    assert Policy(name="p", steps=STEPS).unknown_kind == "consumer"
    today = DUE + timedelta(days=60)
    action = build_action(unknown_debtor(), policy(), 0, "email", "EUR", [invoice()], {}, today)
    assert action is not None and action.kind is DebtorKind.CONSUMER
    expected = law.statutory_interest(
        Decimal("1000.00"), DUE + timedelta(days=1), today, commercial=False
    )
    assert action.interest == expected


def test_unknown_kind_business_claims_as_for_a_business() -> None:
    today = DUE + timedelta(days=60)
    business = policy(unknown_kind="business")
    action = build_action(unknown_debtor(), business, 0, "email", "EUR", [invoice()], {}, today)
    assert action is not None and action.kind is DebtorKind.BUSINESS
    expected = law.statutory_interest(
        Decimal("1000.00"), DUE + timedelta(days=1), today, commercial=True
    )
    assert action.interest == expected
    costs = build_action(unknown_debtor(), business, 2, "email", "EUR", [invoice()], {}, today)
    assert costs is not None and costs.costs == law.B2B_COMPENSATION


@pytest.mark.parametrize(
    ("unknown_kind", "next_step"), [("consumer", "veertiendagenbrief"), ("business", "laatste")]
)
def test_unknown_kind_decides_the_ladder(unknown_kind: str, next_step: str) -> None:
    sent_on = DUE + timedelta(days=14)
    today = sent_on + timedelta(days=8)
    now = datetime.combine(today, time(9, 0), tzinfo=AMSTERDAM)
    snapshot = Snapshot(
        invoices=[invoice()],
        debtors={("books", "D1"): unknown_debtor()},
        instances={"books": InstanceFacts("books", "default", now.astimezone(UTC))},
        history={("books", "F-1"): [StepSent("aanmaning", sent_on)]},
    )
    result = plan(snapshot, {"default": policy(unknown_kind=unknown_kind)}, now)
    assert [a.step for a in result.actions] == [next_step]


# -- status and plan list the debtors still unknown ------------------------------------------


def test_status_and_plan_list_the_debtors_of_unknown_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    due = local_date(system_clock()) - timedelta(days=20)
    rows = [["Relatiecode", "Naam", "E-mail", "Factuurnummer", "Vervaldatum", "Openstaand"]]
    for code, name in [
        ("10001", "Bouwbedrijf 't Gooi B.V."),
        ("10002", "J. Jansen"),
        ("10003", "P. de Vries"),
    ]:
        rows.append([code, name, f"d{code}@example.nl", f"F-{code}", f"{due:%d-%m-%Y}", "50,00"])
    rows.append(["10004", "K. Paid", "k@example.nl", "F-10004", f"{due:%d-%m-%Y}", "0,00"])
    write(tmp_path / "open.csv", rows)
    (tmp_path / "connectors.toml").write_text(
        textwrap.dedent(
            """
            [connectors.books]
            type = "csv"
            path = "open.csv"
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEBSYNC_CONFIG", raising=False)
    monkeypatch.delenv("DEBSYNC_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["sync"]).exit_code == 0
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    [books] = status["instances"]
    assert books["unknown_kind"] == ["10002", "10003"]
    [line] = [w for w in status["warnings"] if "unknown kind" in w]
    assert line.startswith("books: 2 debtor(s) of unknown kind") and "10002, 10003" in line
    planned = json.loads(runner.invoke(app, ["plan", "--json"]).stdout)
    assert planned["unknown_kind"] == {"books": ["10002", "10003"]}
    human = runner.invoke(app, ["plan"])
    assert "2 debtor(s) of unknown kind" in human.output
