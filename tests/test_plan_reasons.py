"""Issue 17: why an action names each invoice, kept as figures (``StepReason``) so the console
words it in its reader's language; the English explanation stays as the CLI prints it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest
import sqlalchemy as sa

from debsync.decisions import StepReason, english
from debsync.model import Language
from debsync.outbox.table import plan_to_json
from debsync.store.schema import ActionState, outbox
from debsync.web.i18n import step_reason
from debsync.web.pages.plan_items import NOT_QUEUED, load_plan
from test_columnar_plan import NOW as STEADY_NOW
from test_columnar_plan import both, steady_book
from test_web_pages import Console, console, table_rows
from web_book import NOW

pytest_plugins = ["browser"]  # the web_console fixture
__all__ = ["console"]  # the seeded console, shared with test_web_pages

AFTER_PREVIOUS = StepReason(
    "2026-0312",
    "aanmaning",
    date(2026, 10, 19),
    30,
    days_after_previous=14,
    previous_step="herinnering",
    previous_sent_on=date(2026, 11, 2),
)
AFTER_DUE = StepReason("2026-0313", "herinnering", date(2026, 10, 28), 1, days_after_due=1)


def test_the_english_explanation_is_worded_as_before() -> None:
    assert english([AFTER_PREVIOUS, replace(AFTER_DUE, named_in="aanmaning")]) == (
        "2026-0312: step 'aanmaning' is due (14 days after step 'herinnering' was sent on "
        "2026-11-02); 30 days past due; 2026-0313: step 'herinnering' is due (1 days after the "
        "due date 2026-10-28); 1 days past due (named in the 'aanmaning' message)"
    )


def test_a_reason_in_dutch_and_in_english() -> None:
    assert step_reason(AFTER_PREVIOUS, Language.NL) == (
        "2026-0312: Stap 'aanmaning' is aan de beurt: 14 dagen nadat 'herinnering' op "
        "2 november 2026 is verstuurd; 30 dagen na de vervaldatum."
    )
    assert step_reason(AFTER_PREVIOUS, Language.EN) == (
        "2026-0312: Step 'aanmaning' is due: 14 days after 'herinnering' was sent on "
        "2 November 2026; 30 days past due."
    )
    named = replace(AFTER_DUE, named_in="aanmaning")
    assert step_reason(named, Language.NL) == (
        "2026-0313: Stap 'herinnering' is aan de beurt: 1 dag na de vervaldatum van "
        "28 oktober 2026; 1 dag na de vervaldatum. Genoemd in het bericht 'aanmaning'."
    )
    courtesy = StepReason("F-9", "vooraf", date(2026, 11, 9), -3, days_after_due=-3)
    assert step_reason(courtesy, Language.NL) == (
        "F-9: Stap 'vooraf' is aan de beurt: 3 dagen vóór de vervaldatum van 9 november 2026; "
        "nog 3 dagen tot de vervaldatum."
    )
    first = StepReason("F-10", "herinnering", date(2026, 11, 9), 0, days_after_previous=0)
    assert step_reason(first, Language.EN) == (
        "F-10: Step 'herinnering' is due: 0 days after the due date, 9 November 2026; due today."
    )


@pytest.mark.parametrize("reason", [AFTER_PREVIOUS, AFTER_DUE])
def test_a_reason_survives_the_outbox_json(reason: StepReason) -> None:
    stored = json.loads(json.dumps(reason.as_json()))
    assert StepReason.from_json(stored) == reason


@pytest.mark.parametrize("consumer", [False, True])
def test_both_planning_paths_give_equal_reasons(consumer: bool) -> None:
    expected, found = both(steady_book(consumer), STEADY_NOW)
    assert expected.actions
    for want, got in zip(expected.actions, found.actions, strict=True):
        assert want.reasons and got.reasons == want.reasons
        assert [r.number for r in want.reasons] == [line.number for line in want.lines]
        assert want.explanation == english(want.reasons)
        assert plan_to_json(want)["reasons"] == [r.as_json() for r in want.reasons]


def test_the_plan_page_explains_in_the_readers_language(console: Console) -> None:
    view = load_plan(console.config, console.store, NOW)
    assert {i.state for i in view.items} == {"awaiting_approval", NOT_QUEUED}
    assert all(i.reasons for i in view.items)  # the queued one's from the outbox's JSON
    dutch = table_rows(console.client("vera").get("/plan").text)
    english_client = console.client("otto")
    english_client.cookies.set("debsync_lang", "en")
    shown = table_rows(english_client.get("/plan").text)
    for item, nl, en in zip(view.items, dutch, shown, strict=True):
        assert step_reason(item.reasons[0], Language.NL) in nl
        assert "is aan de beurt" in nl and item.explanation not in nl
        assert step_reason(item.reasons[0], Language.EN) in en
        assert "is due:" in en and "aan de beurt" not in en


def test_an_action_queued_before_reasons_were_stored_shows_its_text(console: Console) -> None:
    with console.store.engine.begin() as conn:
        shown = outbox.c.state == ActionState.AWAITING_APPROVAL
        row = conn.execute(sa.select(outbox.c.id, outbox.c.plan).where(shown)).first()
        assert row is not None
        older = {k: v for k, v in row.plan.items() if k != "reasons"}
        conn.execute(sa.update(outbox).where(outbox.c.id == row.id).values(plan=older))
    view = load_plan(console.config, console.store, NOW)
    (queued,) = [i for i in view.items if i.queued]
    assert queued.reasons == ()
    assert queued.why(Language.NL) == [older["explanation"]]
