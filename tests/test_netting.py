"""Open credit notes are offset against the claim: listed in the message, the amount
demanded is net, collection costs follow the net principal, and a debtor whose credits cover
the claim gets nothing (issue 11, item 3)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from debsync import formatting, law
from debsync.actions.base import InvoiceLine, MessageContext
from debsync.actions.email.message import BLOCKS, TEXT_LAYOUT, THIS_MESSAGE
from debsync.actions.letter import build_pdf
from debsync.actions.letter.content import render_letter
from debsync.claims import build_action
from debsync.decisions import Reason
from debsync.facts import DebtorFacts
from debsync.model import DebtorKind, Language
from debsync.policy import Policy, Step
from debsync.store import Store
from debsync.templates import Templates
from debsync.testing import sample_context
from test_agency import make_action, validate
from test_scheduler import DUE, book, inv, reasons, run

from books import DUE as BOOKED_DUE
from books import Book
from fakes import RecordingAction, invoice


def test_a_credit_note_is_netted_and_listed_in_the_reminder() -> None:
    """The issue: 726.00 + 1,541.00 and a credit note of -121.00 demanded 2,267.00."""
    snapshot = book(inv("F1", "726.00"), inv("F2", "1541.00"), inv("C1", "-121.00"))
    result = run(snapshot, DUE + timedelta(days=1))

    (action,) = result.actions
    assert action.principal == Decimal("2146.00")
    assert [line.number for line in action.lines] == ["F1", "F2"]
    assert [(c.number, c.principal) for c in action.credits] == [("C1", Decimal("-121.00"))]
    assert reasons(result)["C1"] is Reason.CREDIT


def test_credits_that_cover_the_due_invoices_send_nothing() -> None:
    later = DUE + timedelta(days=30)  # not yet due: the debtor's net balance stays positive
    snapshot = book(inv("F1", "100.00"), inv("C1", "-150.00"), inv("F9", "500.00", due=later))
    result = run(snapshot, DUE + timedelta(days=1))
    assert result.actions == []
    assert reasons(result) == {
        "F1": Reason.NET_BALANCE,
        "C1": Reason.CREDIT,
        "F9": Reason.NOT_DUE,
    }


def test_collection_costs_are_computed_on_the_net_principal() -> None:
    step = Step(name="handoff", channels=("agency",), days_after_due=30, claim_costs=True)
    policy = Policy(name="p", steps=(step,), b2b_costs="staffel")
    debtor = DebtorFacts("books", "D1", DebtorKind.BUSINESS)
    invoices = [inv("F1", "3000.00"), inv("F2", "1000.00")]
    credits = [inv("C1", "-1500.00")]
    today = DUE + timedelta(days=40)

    netted = build_action(debtor, policy, 0, "agency", "EUR", invoices, {}, today, credits=credits)
    gross = build_action(debtor, policy, 0, "agency", "EUR", invoices, {}, today)

    assert netted is not None and gross is not None
    assert netted.principal == Decimal("2500.00")
    assert netted.costs == law.collection_costs(Decimal("2500.00")) == Decimal("375.00")
    assert gross.costs == law.collection_costs(Decimal("4000.00"))


def test_interest_is_not_claimed_on_the_part_a_credit_note_covers() -> None:
    step = Step(name="aanmaning", channels=("email",), days_after_due=14, claim_interest=True)
    policy = Policy(name="p", steps=(step,))
    debtor = DebtorFacts("books", "D1", DebtorKind.BUSINESS)
    today = DUE + timedelta(days=120)
    invoices = [inv("F1", "1000.00")]
    credits = [inv("C1", "-400.00")]

    netted = build_action(debtor, policy, 0, "email", "EUR", invoices, {}, today, credits=credits)

    assert netted is not None and netted.interest is not None
    expected = law.statutory_interest(
        Decimal("600.00"), DUE + timedelta(days=1), today, commercial=True
    )
    assert netted.interest == expected


class RenderingAction(RecordingAction):
    """Renders the shipped e-mail text, as the e-mail action does, and records it."""

    type_name: ClassVar[str] = "rendering"
    texts: ClassVar[list[str]] = []

    def render(self, context: MessageContext) -> dict[str, Any]:
        templates = self.env.templates
        blocks = templates.blocks(
            "email", context, BLOCKS, this_message=THIS_MESSAGE[context.language]
        )
        self.texts.append(templates.layout(TEXT_LAYOUT, context, html=False, **blocks))
        return super().render(context)


def test_the_rendered_reminder_demands_the_net_amount_and_names_the_credit_note(
    store: Store, tmp_path: Path
) -> None:
    RenderingAction.texts.clear()
    RecordingAction.sent.clear()
    b = Book(store, tmp_path, RenderingAction)
    b.book(
        invoice("2026-0101", "726.00", total="726.00", due=BOOKED_DUE),
        invoice("2026-0102", "1541.00", total="1541.00", due=BOOKED_DUE),
        invoice("2026-C007", "-121.00", total="-121.00", due=BOOKED_DUE),
    )
    b.act()

    (text,) = [t.replace("\xa0", " ") for t in RenderingAction.texts if "2026-0101" in t]
    assert "het openstaande bedrag van € 2.146,00" in text
    assert "Creditnota 2026-C007: € -121,00" in text
    assert "creditnota 2026-C007 van € 121,00 in mindering gebracht" in text
    assert "2.267,00" not in text
    steps = b.events("step.sent")
    assert sorted(e.invoice_id for e in steps if e.debtor_id == "D1") == ["2026-0101", "2026-0102"]


CREDIT = InvoiceLine(
    external_id="C7",
    number="2026-C007",
    issue_date=BOOKED_DUE,
    due_date=BOOKED_DUE,
    days_overdue=0,
    total=Decimal("-121.00"),
    open_amount=Decimal("-121.00"),
)
SAID = {
    Language.NL: "creditnota 2026-C007 van € 121,00 in mindering gebracht",
    Language.EN: "credit note 2026-C007 of €121.00 has been deducted",
}


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize(
    ("channel", "step"),
    [
        ("email", "reminder"),
        ("email", "aanmaning"),
        ("letter", "aanmaning"),
        ("letter", "veertiendagenbrief"),
        ("sms", "reminder"),
        ("sms", "aanmaning"),
    ],
)
def test_every_channel_names_the_credit_note(channel: str, step: str, language: Language) -> None:
    context = sample_context(step, channel, language)
    netted = dataclasses.replace(
        context, credits=(CREDIT,), principal=context.principal - Decimal("121.00")
    )
    blocks = ["text"] if channel == "sms" else ["subject", "opening", "closing"]
    this = {Language.NL: "dit bericht", Language.EN: "this message"}[language]
    rendered = " ".join(Templates().blocks(channel, netted, blocks, this_message=this).values())
    rendered = rendered.replace("\xa0", " ")
    if channel == "sms":
        assert "2026-C007" in rendered
    else:
        assert SAID[language] in rendered


@pytest.mark.parametrize("language", list(Language))
def test_a_combined_message_names_each_invoices_stage(language: Language) -> None:
    context = sample_context("aanmaning", "email", language)
    first, second = context.invoices[:2]
    combined = dataclasses.replace(
        context, invoices=(first, dataclasses.replace(second, stage="reminder"))
    )
    templates = Templates()
    blocks = templates.blocks("email", combined, ["subject", "opening", "closing"])
    body = templates.layout(TEXT_LAYOUT, combined, html=False, **blocks)
    label = {Language.NL: "herinnering", Language.EN: "reminder"}[language]
    assert f"({label})" in body
    assert {Language.NL: "ter herinnering", Language.EN: "as a reminder"}[language] in body
    assert second.number in blocks["opening"]


def test_the_agency_case_lists_the_credit_notes_offset() -> None:
    context = sample_context("handoff", "agency", kind=DebtorKind.BUSINESS)
    netted = dataclasses.replace(
        context, credits=(CREDIT,), principal=context.principal - Decimal("121.00")
    )
    payload = make_action().render(netted)
    assert payload["claim"]["credit_notes"] == [
        {
            "external_id": "C7",
            "number": "2026-C007",
            "issue_date": BOOKED_DUE.isoformat(),
            "amount_offset": "121.00",
        }
    ]
    assert payload["claim"]["principal"] == str(context.principal - Decimal("121.00"))
    validate({**payload, "created_at": "2026-11-23T09:00:00Z"})  # as the action sends it


def test_the_letter_lists_the_credit_note_and_each_stage_in_its_table() -> None:
    context = sample_context("aanmaning", "letter", Language.NL)
    first, second = context.invoices[:2]
    netted = dataclasses.replace(
        context,
        invoices=(first, dataclasses.replace(second, stage="reminder")),
        credits=(CREDIT,),
        principal=first.open_amount + second.open_amount - Decimal("121.00"),
    )
    content = render_letter(netted, Templates())
    rows = [row.number for row in content.invoices]
    assert rows == [
        f"{first.number} (aanmaning)",
        f"{second.number} (herinnering)",
        "Creditnota 2026-C007",
    ]
    assert content.totals[0].amount.replace("\xa0", " ") == formatting.money(
        netted.principal, "EUR", Language.NL
    ).replace("\xa0", " ")
    assert build_pdf(content.model_dump(mode="json")).startswith(b"%PDF")
