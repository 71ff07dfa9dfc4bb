"""Debtor-facing templates: the veertiendagenbrief's legal elements, every shipped template in
both languages, the operator's overrides, the sandbox, Dutch and English formatting."""

from __future__ import annotations

import dataclasses
import os
from decimal import Decimal
from pathlib import Path

import pytest

from debsync import law
from debsync.actions.base import RenderError
from debsync.model import DebtorKind, Language
from debsync.templates import Templates
from debsync.testing import SHIPPED_STEPS, sample_context

TEMPLATES = Templates()
NBSP = "\xa0"  # babel separates the euro sign from the amount with a no-break space
BLOCKS = {"email": ["subject", "opening", "closing"], "letter": ["subject", "opening", "closing"]}


def text(channel: str, step: str, language: Language, **changes: object) -> str:
    context = dataclasses.replace(sample_context(step, channel, language), **changes)
    this = {Language.NL: "dit bericht", Language.EN: "this message"}[language]
    blocks = TEMPLATES.blocks(channel, context, BLOCKS.get(channel, ["text"]), this_message=this)
    return "\n\n".join(blocks.values())


@pytest.mark.parametrize("channel", ["letter", "email"])
def test_the_veertiendagenbrief_states_everything_the_law_requires(channel: str) -> None:
    context = sample_context("veertiendagenbrief", channel, Language.NL)
    costs = law.collection_costs(context.principal)
    assert context.announced_costs == costs == Decimal("165.75")  # 15 % of EUR 1,105.00
    rendered = text(channel, "veertiendagenbrief", Language.NL)

    # the term in the wording the Hoge Raad approved (HR 25-11-2016, ECLI:NL:HR:2016:2704)
    assert "binnen veertien dagen vanaf de dag nadat deze brief bij u is bezorgd" in rendered
    # the exact collection costs as an amount, not a percentage (art. 6:96 lid 6 BW)
    assert f"Deze kosten bedragen €{NBSP}165,75." in rendered
    assert "Besluit vergoeding voor buitengerechtelijke incassokosten" in rendered
    # the consequences of not paying, and that paying in time costs nothing
    assert "Betaalt u niet binnen deze termijn" in rendered
    assert "buitengerechtelijke incassokosten verschuldigd" in rendered
    assert "wettelijke rente" in rendered and "incassobureau" in rendered
    assert (
        "Betaalt u wel binnen deze termijn, dan bent u deze kosten niet verschuldigd." in rendered
    )
    # what is owed, per invoice
    assert f"Het openstaande bedrag is €{NBSP}1.105,00." in rendered
    assert "2026-0001, 2026-0002" in rendered
    # never an invalid term ("na dagtekening", "na heden", "na verzending")
    for invalid in ("dagtekening", "na heden", "na verzending"):
        assert invalid not in rendered


def test_the_email_copy_points_to_the_letter_unless_it_is_the_legal_copy() -> None:
    copy = text("email", "veertiendagenbrief", Language.NL)
    assert copy.startswith("Laatste aanmaning") and "die wij u ook per post sturen" in copy
    legal = text("email", "veertiendagenbrief", Language.NL, legal_copy=True)
    assert "vanaf de dag nadat dit bericht bij u is bezorgd" in legal
    assert "ook per post" not in legal


def test_the_english_veertiendagenbrief_has_the_same_elements() -> None:
    rendered = text("letter", "veertiendagenbrief", Language.EN)
    assert "within fourteen days from the day after this letter has been delivered to you" in (
        rendered
    )
    assert "These costs amount to €165.75." in rendered
    assert "Besluit vergoeding voor buitengerechtelijke incassokosten" in rendered
    assert "statutory interest" in rendered and "collection agency" in rendered


def test_vat_on_the_costs_is_said_when_it_is_charged() -> None:
    rendered = text(
        "letter",
        "veertiendagenbrief",
        Language.NL,
        announced_costs=law.collection_costs(Decimal("1105.00"), vat_rate=Decimal("0.21")),
        costs_vat_rate=Decimal("0.21"),
    )
    assert (
        f"Deze kosten bedragen €{NBSP}200,56, inclusief btw, omdat wij de btw niet kunnen"
        in rendered
    )


def test_no_costs_are_announced_where_none_can_be_claimed() -> None:
    rendered = text("letter", "veertiendagenbrief", Language.NL, announced_costs=None)
    assert "incassokosten" not in rendered and "veertien dagen" in rendered


@pytest.mark.parametrize("kind", [DebtorKind.CONSUMER, DebtorKind.BUSINESS])
@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("channel", ["email", "letter", "sms", "call"])
def test_every_shipped_template_renders(channel: str, language: Language, kind: DebtorKind) -> None:
    required = {"sms": ["text"], "call": ["script"]}.get(channel, ["subject", "opening", "closing"])
    for step in SHIPPED_STEPS[channel]:
        for invoices in (1, 3):
            context = sample_context(step, channel, language, kind=kind, invoices=invoices)
            blocks = TEMPLATES.blocks(channel, context, required)
            assert all(blocks[name].strip() for name in required), (step, blocks)
            plural = "facturen" if language is Language.NL else "invoices"
            if channel in ("email", "letter"):
                assert (plural in blocks["subject"]) == (invoices > 1), blocks["subject"]


def test_interest_is_called_handelsrente_for_businesses() -> None:
    business = text(
        "email", "aanmaning", Language.NL, debtor=sample_context(kind=DebtorKind.BUSINESS).debtor
    )
    assert "de wettelijke handelsrente verschuldigd" in business
    assert "de wettelijke rente verschuldigd" in text("email", "aanmaning", Language.NL)
    assert f"€{NBSP}12,34" in business


def test_the_operator_overrides_a_template_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "reminder.nl.j2").write_text(
        "{% block subject %}Betalingsherinnering {{ numbers }}{% endblock %}"
        "{% block opening %}Beste {{ debtor.name }},{% endblock %}"
        "{% block closing %}Groet{% endblock %}",
        encoding="utf-8",
    )
    mine = Templates(tmp_path)
    context = sample_context("reminder", "email", Language.NL, invoices=1)
    assert mine.blocks("email", context, ["subject", "opening"]) == {
        "subject": "Betalingsherinnering 2026-0001",
        "opening": "Beste J.P. de Vries,",
    }
    english = sample_context("reminder", "email", Language.EN, invoices=1)
    assert mine.blocks("email", english, ["subject"])["subject"] == "Reminder: invoice 2026-0001"


def test_an_edited_template_is_picked_up_once_its_recheck_is_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-running daemon renders an operator's edit, checking the file at most once per
    ``recheck_seconds`` rather than on every message."""
    (tmp_path / "email").mkdir()
    path = tmp_path / "email" / "reminder.nl.j2"
    path.write_text("{% block subject %}Eerste{% endblock %}", encoding="utf-8")
    now = [1000.0]
    monkeypatch.setattr("debsync.templates.time.monotonic", lambda: now[0])
    mine = Templates(tmp_path, recheck_seconds=1.0)
    context = sample_context("reminder", "email", Language.NL)
    assert mine.blocks("email", context, ["subject"]) == {"subject": "Eerste"}

    path.write_text("{% block subject %}Tweede{% endblock %}", encoding="utf-8")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    now[0] += 0.5
    assert mine.blocks("email", context, ["subject"]) == {"subject": "Eerste"}  # not yet due
    now[0] += 0.5
    assert mine.blocks("email", context, ["subject"]) == {"subject": "Tweede"}


def test_templates_run_in_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "reminder.nl.j2").write_text(
        "{% block subject %}{{ ctx.__class__.__init__.__globals__ }}{% endblock %}",
        encoding="utf-8",
    )
    with pytest.raises(RenderError, match="SecurityError"):
        Templates(tmp_path).blocks("email", sample_context(), ["subject"])


def test_a_missing_template_or_variable_is_a_clear_render_error(tmp_path: Path) -> None:
    context = dataclasses.replace(sample_context(), template="tweede-herinnering")
    with pytest.raises(RenderError, match=r"no template email/tweede-herinnering\.nl\.j2"):
        TEMPLATES.blocks("email", context, ["subject"])
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "reminder.nl.j2").write_text(
        "{% block subject %}{{ debtor.nickname }}{% endblock %}", encoding="utf-8"
    )
    with pytest.raises(RenderError, match=r"reminder\.nl\.j2: UndefinedError"):
        Templates(tmp_path).blocks("email", sample_context(), ["subject"])
    assert TEMPLATES.missing("email", ["reminder", "tweede-herinnering"]) == [
        "email/tweede-herinnering.nl.j2",
        "email/tweede-herinnering.en.j2",
    ]


def test_money_and_dates_follow_the_debtors_language() -> None:
    nl = TEMPLATES.layout(
        "email/_layout.txt.j2", sample_context(), html=False, opening="", closing=""
    )
    en = TEMPLATES.layout(
        "email/_layout.txt.j2",
        sample_context(language=Language.EN),
        html=False,
        opening="",
        closing="",
    )
    assert f"Totaal openstaand: €{NBSP}1.105,00" in nl and "vervaldatum 14-10-2026" in nl
    assert "Total outstanding: €1,105.00" in en and "due date 14 Oct 2026" in en


def test_the_html_layout_escapes_what_it_shows() -> None:
    context = sample_context()
    evil = dataclasses.replace(context.debtor, name="<script>alert(1)</script>")
    html = TEMPLATES.layout(
        "email/_layout.html.j2",
        dataclasses.replace(context, debtor=evil),
        html=True,
        subject="x",
        opening="Tom & Jerry <b>",
        closing="",
    )
    assert "<p>Tom &amp; Jerry &lt;b&gt;</p>" in html and "<b>" not in html
