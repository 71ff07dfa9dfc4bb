"""Dunning steps the bookkeeping program already took: read from an export's reminder level
and date, recorded once as an event, and continued from on the ladder, as the law allows."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from debsync import law
from debsync.config import Config
from debsync.connectors.base import ConnectorContext, Page
from debsync.connectors.csv import CsvConnector, CsvSettings
from debsync.decisions import Plan, Reason
from debsync.dossier import load_dossier
from debsync.formatting import short_date
from debsync.model import DebtorKind, Invoice
from debsync.outbox.context import load_facts
from debsync.planning import load_snapshot
from debsync.policy import DEFAULT_STEPS, Policy, default_policy
from debsync.prior_steps import parse_level, recorded_history
from debsync.scheduler import plan
from debsync.store import Store
from debsync.store.schema import EventKind, events
from debsync.sync import SyncEngine

from csv_helpers import write
from fakes import INSTANCE, FakeConnector, debtor, invoice, snapshot

TODAY = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "open-items.csv"
HEADER = [
    "Relatiecode", "Naam", "Soort", "E-mail", "Factuurnummer", "Factuurdatum", "Vervaldatum",
    "Bedrag", "Openstaand", "Aanmaningsniveau", "Laatste aanmaning",
]  # fmt: skip
ADDRESS = {"lines": ["Kerkstraat 1"], "postcode": "3511 AB", "city": "Utrecht"}
PHONE = "030 123 4567"


def csv_row(number: str, level: str, day: str) -> list[str]:
    return [
        "10001", "Bakkerij De Korrel B.V.", "Zakelijk", "info@bakkerij.example.nl", number,
        "01-09-2026", "01-10-2026", "121,00", "121,00", level, day,
    ]  # fmt: skip


def read_export(path: Path) -> tuple[dict[str, Invoice], list[Any]]:
    settings = CsvSettings.model_validate({"path": path.name})
    context = ConnectorContext("books", path.parent, clock=lambda: TODAY)

    async def collect() -> list[Page]:
        return [page async for page in CsvConnector("books", settings, context).fetch(None)]

    pages = asyncio.run(collect())
    found = {i.external_id: i for page in pages for i in page.invoices}
    return found, [r for page in pages for r in page.rejects]


# -- reading an export ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("1", "reminder"),
        ("2", "aanmaning"),
        ("3", "veertiendagenbrief"),
        ("4", "veertiendagenbrief"),
        ("Herinnering", "reminder"),
        ("Betalingsherinnering", "reminder"),
        ("aanmaning", "aanmaning"),
        ("Laatste aanmaning", "veertiendagenbrief"),
        ("Sommatie", "veertiendagenbrief"),
        ("14-dagenbrief", "veertiendagenbrief"),
        ("WIK-brief", "veertiendagenbrief"),
        ("Veertiendagenbrief", "veertiendagenbrief"),
        ("1e herinnering", "reminder"),
        ("Tweede herinnering", "reminder"),
        ("2e aanmaning", "aanmaning"),
        ("3e aanmaning", "aanmaning"),  # only a "laatste" one is final
        ("Final reminder", "veertiendagenbrief"),
        ("0", None),
        ("Geen", None),
    ],
)
def test_a_level_is_a_number_or_a_word(text: str, level: str | None) -> None:
    assert parse_level(text) == level


def test_the_export_columns_give_levels_and_dates_and_bad_values_are_located_and_dropped(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "open.csv",
        [
            HEADER,
            csv_row("F1", "1", "15-10-2026"),
            csv_row("F2", "Aanmaning", "01-11-2026"),
            csv_row("F3", "Laatste aanmaning", "2026-11-20"),
            csv_row("F4", "", "20-10-2026"),  # a date alone: a reminder was sent
            csv_row("F5", "", ""),
            csv_row("F6", "blauw", "01-11-2026"),
            csv_row("F7", "2", "31-02-2026"),
            csv_row("F8", "2", "10-12-2026"),  # after today
            csv_row("F9", "2", "15-08-2026"),  # before the invoice date
            csv_row("F10", "2", ""),
        ],
    )

    found, rejects = read_export(path)

    prior = {n: (i.prior_step, i.prior_step_on) for n, i in found.items()}
    assert prior == {
        "F1": ("reminder", date(2026, 10, 15)),
        "F2": ("aanmaning", date(2026, 11, 1)),
        "F3": ("veertiendagenbrief", date(2026, 11, 20)),
        "F4": ("reminder", date(2026, 10, 20)),
        "F5": (None, None),
        "F6": (None, None),
        "F7": (None, None),
        "F8": (None, None),
        "F9": (None, None),
        "F10": (None, None),
    }  # every invoice synced; only the unusable prior steps are dropped
    dropped = "; the prior dunning step was dropped"
    assert [(r.kind, r.ref, r.invoice_id, r.dropped, r.reason) for r in rejects] == [
        (
            "invoice",
            "open.csv:7",
            "F6",
            True,
            "column 'Aanmaningsniveau': 'blauw' is not a reminder level (1-3, herinnering, "
            f"aanmaning, …){dropped}",
        ),
        (
            "invoice",
            "open.csv:8",
            "F7",
            True,
            f"column 'Laatste aanmaning': '31-02-2026' is not a valid date{dropped}",
        ),
        (
            "invoice",
            "open.csv:9",
            "F8",
            True,
            f"column 'Laatste aanmaning': '10-12-2026' lies in the future{dropped}",
        ),
        (
            "invoice",
            "open.csv:10",
            "F9",
            True,
            f"column 'Laatste aanmaning': '15-08-2026' is before the invoice date{dropped}",
        ),
        (
            "invoice",
            "open.csv:11",
            "F10",
            True,
            f"column 'Aanmaningsniveau': '2' has no date{dropped}",
        ),
    ]


def test_the_model_wants_a_level_with_a_date_not_before_the_invoice() -> None:
    base = invoice("F1").model_dump()
    with pytest.raises(ValidationError, match="needs both its level and its date"):
        Invoice.model_validate({**base, "prior_step": "aanmaning"})
    with pytest.raises(ValidationError, match="before the invoice date"):
        Invoice.model_validate(
            {**base, "prior_step": "aanmaning", "prior_step_on": date(2026, 8, 31)}
        )


# -- recording it -----------------------------------------------------------------------------


def prior(ext: str, step: str, on: date, **changes: Any) -> Invoice:
    return invoice(ext, **changes).model_copy(update={"prior_step": step, "prior_step_on": on})


def sync(store: Store, *records: Invoice, who: Any = None, at: datetime = TODAY) -> None:
    pages = snapshot(*records, debtors=(who or debtor(),))
    engine = SyncEngine(store, clock=lambda: at)
    result = asyncio.run(engine.run(INSTANCE, FakeConnector(pages)))
    assert result.ok
    assert result.rejects == []


def recorded(store: Store) -> list[tuple[str | None, dict[str, Any]]]:
    with store.engine.connect() as conn:
        query = (
            sa.select(events.c.invoice_id, events.c.data)
            .where(events.c.kind == EventKind.STEP_RECORDED_ELSEWHERE)
            .order_by(events.c.id)
        )
        return [(inv, dict(data)) for inv, data in conn.execute(query)]


def test_a_prior_step_is_recorded_once_however_often_it_syncs(store: Store) -> None:
    first = prior("F1", "reminder", date(2026, 10, 15))
    sync(store, first)
    sync(store, first)  # unchanged
    sync(store, prior("F1", "reminder", date(2026, 10, 15), open_amount="100.00"))  # paid a part
    assert recorded(store) == [
        ("F1", {"step": "reminder", "sent_on": "2026-10-15", "source": "books"})
    ]

    sync(store, prior("F1", "aanmaning", date(2026, 11, 1), open_amount="100.00"))  # a change

    assert [data["step"] for _, data in recorded(store)] == ["reminder", "aanmaning"]


def test_a_prior_step_dated_after_today_is_not_recorded(store: Store) -> None:
    sync(store, prior("F1", "aanmaning", date(2026, 12, 3)))
    assert recorded(store) == []


# -- continuing the ladder --------------------------------------------------------------------


def planned(store: Store, now: datetime, **policy: Any) -> Plan:
    policies = {"default": default_policy().model_copy(update=policy)}
    loaded = load_snapshot(store, {"books": "default"}, policies=policies)
    return plan(loaded, policies, now, check_freshness=False)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


def decided(result: Plan, number: str = "F1") -> tuple[Reason, str | None, date | None]:
    (decision,) = [d for d in result.decisions if d.number == number]
    return decision.reason, decision.next_step, decision.next_on


def test_after_a_recorded_herinnering_a_business_gets_the_aanmaning_with_interest(
    store: Store,
) -> None:
    # A phone number: debsync's courtesy call after its own reminder would reach the
    # debtor, but the source's ladder ran in its place, so the aanmaning is next.
    sync(store, prior("F1", "reminder", date(2026, 10, 20)), who=debtor(phones=[PHONE]))

    early = planned(store, at(date(2026, 10, 25)))
    assert decided(early) == (Reason.NOT_DUE, "aanmaning", date(2026, 10, 26))  # 6 days on

    result = planned(store, at(date(2026, 10, 26)))
    (action,) = result.actions
    assert (action.step, action.channel) == ("aanmaning", "email")
    expected = law.statutory_interest(
        Decimal("121.00"), date(2026, 10, 2), date(2026, 10, 26), commercial=True
    )
    assert action.interest == expected > 0  # from the due date, as for any aanmaning


def test_after_a_recorded_aanmaning_a_consumer_gets_the_veertiendagenbrief_a_week_later(
    store: Store,
) -> None:
    who = debtor(kind="consumer", address=ADDRESS)
    sync(store, prior("F1", "aanmaning", date(2026, 11, 1)), who=who)

    assert decided(planned(store, at(date(2026, 11, 7)))) == (
        Reason.NOT_DUE,
        "veertiendagenbrief",
        date(2026, 11, 8),
    )
    steps = {(a.step, a.channel) for a in planned(store, at(date(2026, 11, 8))).actions}
    assert steps == {("veertiendagenbrief", "letter"), ("veertiendagenbrief", "email")}


def test_the_policy_can_keep_its_courtesy_call_after_a_recorded_reminder(store: Store) -> None:
    sync(store, prior("F1", "reminder", date(2026, 10, 20)), who=debtor(phones=[PHONE]))

    result = planned(store, at(date(2026, 10, 27)), waive_courtesies_after_recorded=False)

    assert [(a.step, a.channel) for a in result.actions] == [("call", "call")]  # 7 days on


def test_a_final_notice_under_a_policy_without_veertiendagenbrief_is_its_last_letter() -> None:
    steps = tuple(s for s in DEFAULT_STEPS if s.role is None)  # business only: no handoff
    b2b = Policy(steps=steps, unknown_kind="business")
    day = date(2026, 11, 1)

    found = recorded_history(b2b, DebtorKind.BUSINESS, "veertiendagenbrief", day, "exact")

    assert [(s.step, s.sent_on, s.elsewhere) for s in found] == [
        ("reminder", day, "exact"),
        ("aanmaning", day, "exact"),
        ("final-call", day, "exact"),  # the courtesy after it, waived
    ]


def test_the_bundled_example_records_reminders_and_aanmaningen_without_a_reject() -> None:
    found, rejects = read_export(EXAMPLE)
    levels = Counter(i.prior_step for i in found.values() if i.prior_step)
    assert set(levels) == {"reminder", "aanmaning"}
    assert not [r for r in rejects if "prior dunning step" in r.reason]


def test_without_the_policy_a_recorded_step_is_left_out(store: Store) -> None:
    sync(store, prior("F1", "aanmaning", date(2026, 11, 1)))
    loaded = load_snapshot(store, {"books": "default"})
    assert loaded.history == {}


def test_a_consumers_recorded_veertiendagenbrief_counts_only_when_the_policy_vouches_for_it(
    store: Store,
) -> None:
    who = debtor(kind="consumer", address=ADDRESS, phones=[PHONE])
    sync(store, prior("F1", "veertiendagenbrief", date(2026, 11, 1)), who=who)
    today = at(date(2026, 12, 2))

    # By default debsync sends its own veertiendagenbrief, and claims no costs.
    actions = planned(store, today).actions
    assert {a.step for a in actions} == {"veertiendagenbrief"}
    assert all(a.costs is None for a in actions)

    # Vouched for: its term has long ended, the courtesy call is waived, the handoff claims
    # the statutory collection costs.
    (handoff,) = planned(store, today, trust_recorded_wik=True).actions
    assert handoff.step == "handoff"
    assert handoff.requires_approval
    assert handoff.costs == law.collection_costs(Decimal("121.00"))


def test_the_outbox_rebuilds_a_handoff_with_the_recorded_steps_so_its_costs_stay(
    store: Store, tmp_path: Path
) -> None:
    who = debtor(kind="consumer", address=ADDRESS, phones=[PHONE])
    sync(store, prior("F1", "veertiendagenbrief", date(2026, 11, 1)), who=who)
    trusting = default_policy().model_copy(update={"trust_recorded_wik": True})
    config = Config(
        path=tmp_path / "connectors.toml",
        store_url="",
        policies={"default": trusting},
        connectors={"books": INSTANCE},
    )
    with store.engine.connect() as conn:
        row = SimpleNamespace(instance="books", debtor_id="D1", invoice_ids=["F1"])  # an outbox row
        facts = load_facts(conn, [row], config)

    # The same history planning gave the scheduler: the recorded letter and the steps below
    # it, and the courtesy call after it waived; the claim's costs are gated on these.
    history = facts.history[("books", "F1")]
    steps = [s.step for s in history]
    assert steps == ["reminder", "aanmaning", "veertiendagenbrief", "final-call"]
    assert all(s.elsewhere for s in history)


def test_a_business_after_a_recorded_final_notice_goes_to_handoff_with_its_compensation(
    store: Store,
) -> None:
    sync(store, prior("F1", "veertiendagenbrief", date(2026, 11, 1)))
    (handoff,) = planned(store, at(date(2026, 11, 8))).actions
    assert (handoff.step, handoff.costs) == ("handoff", law.B2B_COMPENSATION)


def test_a_step_debsync_sent_after_the_recorded_one_is_where_the_ladder_stands(
    store: Store,
) -> None:
    sync(store, prior("F1", "reminder", date(2026, 10, 20)))
    with store.engine.begin() as conn:  # debsync's own aanmaning, as the outbox records it
        conn.execute(
            sa.insert(events).values(
                at=TODAY,
                instance="books",
                debtor_id="D1",
                invoice_id="F1",
                kind=EventKind.STEP_SENT,
                data={"step": "aanmaning", "sent_on": "2026-10-27", "role": None},
            )
        )
    (history,) = load_snapshot(
        store, {"books": "default"}, policies={"default": default_policy()}
    ).history.values()
    assert [(s.step, s.elsewhere) for s in history] == [
        ("reminder", "books"),
        ("call", "books"),
        ("aanmaning", None),
    ]


def test_the_dossier_shows_the_recorded_step(store: Store) -> None:
    sync(store, prior("F1", "aanmaning", date(2026, 11, 1)))
    summaries = [e.summary for e in load_dossier(store, "books", "D1").entries]
    assert f"step aanmaning recorded in books on {short_date(date(2026, 11, 1))}" in summaries
