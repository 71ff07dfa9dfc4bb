"""Collection by others: invoices the bookkeeping program reminds itself, direct debits under
way and failed (storno), carried from the model through the store into the plan."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from debsync.actions.base import InvoiceLine
from debsync.actions.email import FileAction, FileSettings
from debsync.actions.letter.content import render_letter
from debsync.config import ActionInstance
from debsync.connectors.csv.values import is_direct_debit, is_failed_collection
from debsync.decisions import Reason, explain
from debsync.eligibility import held
from debsync.invoice_rows import row_of
from debsync.model import Language
from debsync.planning import load_snapshot
from debsync.policy import default_policy
from debsync.scheduler import plan
from debsync.store import Store
from debsync.store.schema import EventKind, events, invoices
from debsync.sync import SyncEngine
from debsync.sync.writer import _fingerprint
from debsync.templates import Templates, failed_collection
from debsync.testing.samples import sample_context

from books import DUE, Book
from csv_helpers import read, write
from fakes import INSTANCE, FakeConnector, RecordingAction, debtor, invoice, snapshot

POLICIES = {"default": default_policy()}


def sync(store: Store, clock: Any, *records: Any) -> None:
    pages = snapshot(*records, debtors=(debtor(),))
    assert asyncio.run(SyncEngine(store, clock=clock).run(INSTANCE, FakeConnector(pages))).ok


def planned(store: Store, now: datetime) -> dict[str, Any]:
    loaded = load_snapshot(store, {"books": "default"}, sources={"books": "moneybird"})
    result = plan(loaded, POLICIES, now, check_freshness=False)
    return {d.number: d for d in result.decisions}


def test_reminded_by_source_is_left_to_the_source_with_its_reason(store: Store, clock: Any) -> None:
    own = invoice("F1").model_copy(update={"reminded_by_source": True})
    sync(store, clock, own, invoice("F2"))

    decisions = planned(store, clock.now + timedelta(days=30))

    assert decisions["F1"].reason is Reason.SOURCE_REMINDS
    assert "left to moneybird's own reminders" in explain(decisions["F1"])
    assert decisions["F2"].reason is not Reason.SOURCE_REMINDS  # the ordinary one is dunned


def test_flags_are_stored_and_a_change_of_flag_is_a_change(store: Store, clock: Any) -> None:
    sync(store, clock, invoice("F1"))
    sync(store, clock, invoice("F1"))  # unchanged: no event
    flagged = invoice("F1").model_copy(update={"direct_debit": True, "direct_debit_failed": True})
    sync(store, clock, flagged)

    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(invoices.c.direct_debit_failed, invoices.c.reminded_by_source)
        ).one()
        kinds = conn.execute(
            sa.select(events.c.kind).where(events.c.invoice_id == "F1").order_by(events.c.id)
        ).scalars()
        assert tuple(row) == (True, False)
        assert list(kinds) == [EventKind.INVOICE_OPENED, EventKind.INVOICE_CHANGED]


def test_pending_direct_debit_is_never_dunned_and_a_storno_is(store: Store, clock: Any) -> None:
    pending = invoice("F1").model_copy(update={"direct_debit": True})
    storno = invoice("F2").model_copy(update={"direct_debit": True, "direct_debit_failed": True})
    sync(store, clock, pending, storno)
    late = datetime.combine(invoice("F1").due_date + timedelta(days=200), datetime.min.time(), UTC)

    decisions = planned(store, late.replace(hour=9))

    assert decisions["F1"].reason is Reason.DIRECT_DEBIT
    assert "still pending 200 days after the due date" in decisions["F1"].detail
    assert "check the collection in moneybird" in decisions["F1"].detail
    assert decisions["F2"].reason in (Reason.PLANNED, Reason.AWAITING_APPROVAL)


def test_a_storno_is_reminded_with_the_incasso_sentence_and_a_pending_one_is_not(
    store: Store, tmp_path: Path
) -> None:
    book = Book(store, tmp_path, RecordingAction)
    outbox_dir = tmp_path / "out"
    settings = FileSettings(directory=outbox_dir, from_address="debiteuren@voorbeeld.nl")
    mail = ActionInstance("mail", "file", FileAction, settings)
    book.config = replace(book.config, actions={"mail": mail})
    storno = invoice("F1", due=DUE).model_copy(
        update={"direct_debit": True, "direct_debit_failed": True}
    )
    pending = invoice("G1", debtor_id="D2", due=DUE).model_copy(update={"direct_debit": True})
    book.book(storno, pending)

    book.act()

    (written,) = outbox_dir.glob("*.eml")
    message = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    sentence = "De automatische incasso van deze factuur is helaas niet gelukt."
    assert sentence in text.get_content()
    assert sentence in html.get_content()
    assert message["To"].addresses[0].addr_spec == "d1@example.nl"  # not D2: still pending


def line(number: str, failed: bool) -> InvoiceLine:
    sample = sample_context("reminder", "email", Language.NL).invoices[0]
    return replace(sample, number=number, direct_debit_failed=failed)


@pytest.mark.parametrize(
    ("language", "failed", "sentence"),
    [
        (Language.NL, (True,), "De automatische incasso van deze factuur is helaas niet gelukt."),
        (Language.NL, (True, True), "De automatische incasso van deze facturen is helaas"),
        (Language.NL, (True, False), "De automatische incasso van factuur A-0 is helaas niet"),
        (
            Language.NL,
            (True, False, True, True),
            "De automatische incasso van de facturen A-0, A-2 en A-3 is helaas niet gelukt.",
        ),
        (Language.EN, (True,), "Unfortunately, the direct debit for this invoice did not succeed."),
        (Language.EN, (False, True), "Unfortunately, the direct debit for invoice A-1 did not"),
        (Language.NL, (False, False), ""),
    ],
)
def test_the_incasso_sentence_names_the_failed_collections(
    language: Language, failed: tuple[bool, ...], sentence: str
) -> None:
    lines = tuple(line(f"A-{i}", f) for i, f in enumerate(failed))
    context = replace(sample_context("aanmaning", "email", language), invoices=lines)
    assert failed_collection(context).startswith(sentence)
    assert bool(failed_collection(context)) == any(failed)


@pytest.mark.parametrize("channel", ["sms", "letter", "call"])
@pytest.mark.parametrize("language", list(Language))
def test_sms_letters_and_call_sheets_say_the_incasso_failed(
    channel: str, language: Language
) -> None:
    context = replace(sample_context("aanmaning", channel, language), invoices=(line("A-1", True),))
    expected = failed_collection(context)
    if channel == "letter":
        assert render_letter(context, Templates()).opening[0] == expected
    else:
        block = "text" if channel == "sms" else "script"
        assert expected in Templates().blocks(channel, context, [block])[block]


@pytest.mark.parametrize(
    ("cell", "direct_debit", "failed"),
    [
        ("Automatische incasso", True, False),
        ("SEPA Direct Debit", True, False),
        ("Overboeking", False, False),
        ("Storno", True, True),
        ("Gestorneerd", True, True),
        ("Stornering", True, True),
        ("Incasso mislukt", True, True),
        ("Incasso niet gelukt", True, True),
        ("Direct debit returned", True, True),
        ("Teruggestort", True, True),
        ("Betaling mislukt", False, False),  # a failed iDEAL payment is no failed collection
    ],
)
def test_csv_payment_methods_name_direct_debits_and_failed_collections(
    cell: str, direct_debit: bool, failed: bool
) -> None:
    assert (is_failed_collection(cell) or is_direct_debit(cell), is_failed_collection(cell)) == (
        direct_debit,
        failed,
    )


def test_a_csv_export_with_a_storno_in_its_payment_method_column(tmp_path: Path) -> None:
    debtor_cells = ["10001", "Bouwbedrijf 't Gooi B.V.", "info@gooi.example.nl"]
    header = ["Relatiecode", "Naam", "E-mail", "Factuurnummer", "Vervaldatum", "Openstaand"]
    path = write(
        tmp_path / "open.csv",
        [
            [*header, "Betaalwijze"],
            [*debtor_cells, "2026-0001", "01-10-2026", "121,00", "Automatische incasso"],
            [*debtor_cells, "2026-0002", "01-10-2026", "121,00", "Incasso gestorneerd"],
            [*debtor_cells, "2026-0003", "01-10-2026", "121,00", "Overboeking"],
        ],
    )

    found = read(path).invoices

    assert {n: (i.direct_debit, i.direct_debit_failed) for n, i in found.items()} == {
        "2026-0001": (True, False),
        "2026-0002": (True, True),
        "2026-0003": (False, False),
    }


def test_direct_debits_pending_past_the_grace_days_are_listed_to_check(
    store: Store, clock: Any
) -> None:
    late = invoice("F1").model_copy(update={"direct_debit": True})  # due 2026-10-01
    recent = invoice("F2", due=date(2026, 11, 20)).model_copy(update={"direct_debit": True})
    sync(store, clock, late, recent)
    loaded = load_snapshot(store, {"books": "default"}, sources={"books": "csv"})

    listed = held(plan(loaded, POLICIES, clock.now, check_freshness=False))

    assert [(h["number"], h["debtor"]) for h in listed["collections_to_check"]] == [("F1", "D1")]
    assert (
        "still pending 52 days after the due date: check the collection in csv"
        in (listed["collections_to_check"][0]["detail"])
    )
    assert listed["prescribed"] == []


def test_an_upgrade_sees_no_stored_invoice_as_changed(store: Store, clock: Any) -> None:
    """Fingerprints stored before the collection flags existed still match an invoice
    without them: upgrading writes no event and no row for an unchanged invoice."""
    sync(store, clock, invoice("F1"))
    before_flags = row_of(invoice("F1"))[1:12]  # number up to has_document
    stored_before = _fingerprint(repr(before_flags))  # the earlier formula
    with store.engine.begin() as conn:
        conn.execute(sa.update(invoices).values(fingerprint=stored_before, raw_fingerprint=None))

    sync(store, clock, invoice("F1"))

    with store.engine.connect() as conn:
        kinds = conn.execute(sa.select(events.c.kind).where(events.c.invoice_id == "F1"))
        assert list(kinds.scalars()) == [EventKind.INVOICE_OPENED]
        assert conn.execute(sa.select(invoices.c.fingerprint)).scalar_one() == stored_before
