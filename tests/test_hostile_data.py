"""Hostile debtor data (issue 10 item 7): what a source supplies is cleaned at the model, so
line breaks, NUL, bidi overrides and non-https links never reach a header, a link or an SMS."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from debsync.actions.base import ActionEnvironment, PermanentActionError
from debsync.actions.email.file import FileAction, FileSettings
from debsync.actions.sms import SmsAction, SmsSettings
from debsync.config import ActionInstance
from debsync.model import Debtor, Invoice
from debsync.store import Store
from debsync.store.schema import ActionState
from debsync.templates import Templates
from debsync.testing.samples import sample_context

from books import DUE, Book
from conftest import FrozenClock
from csv_helpers import read, write
from fakes import RecordingAction, invoice

RLO = "\u202e"
TOKEN = "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"
HOSTILE_NAME = "Jan\r\nBcc: victim@example.org\x00 Jansen"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"


def invoice_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "external_id": "2026-0001",
        "number": "2026-0001",
        "debtor_id": "D1",
        "issue_date": date(2026, 10, 1),
        "due_date": date(2026, 10, 31),
        "total": {"amount": "10.00"},
        "open_amount": {"amount": "10.00"},
    }
    return data | changes


def test_line_breaks_nul_and_bidi_controls_are_stripped_from_debtor_text() -> None:
    debtor = Debtor(
        external_id="D1",
        name=HOSTILE_NAME + BIDI,
        address={"lines": [f"Kerk{RLO}straat 1\x07"], "city": "Utrecht\x00"},
    )

    assert debtor.name == "Jan Bcc: victim@example.org Jansen"
    assert debtor.address is not None
    assert debtor.address.lines == ("Kerkstraat 1",) and debtor.address.city == "Utrecht"
    number = Invoice.model_validate(invoice_data(number=f"2026-{RLO}1000")).number
    assert number == "2026-1000"


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "http://pay.example.nl", "data:,x", "//x"],
)
def test_only_https_payment_links(link: str) -> None:
    with pytest.raises(ValidationError, match="only https: links are used as payment links"):
        Invoice.model_validate(invoice_data(payment_url=link))
    fine = Invoice.model_validate(invoice_data(payment_url="https://betalen.example.nl/1"))
    assert fine.payment_url == "https://betalen.example.nl/1"


def hostile_export(tmp_path: Path) -> tuple[Debtor, Invoice]:
    """The debtor and invoice the csv connector makes of a hostile row, with the reasons."""
    header = ["Relatiecode", "Naam", "E-mail", "Telefoon", "Factuurnummer", "Vervaldatum"]
    header += ["Openstaand", "Betaallink"]
    row = ["D1", HOSTILE_NAME, "jp.devries@example.nl", "+31687654321", f"2026-{RLO}0001"]
    row += ["31-10-2026", "10,00", "javascript:alert(document.cookie)"]
    result = read(write(tmp_path / "x.csv", [header, row]))
    reasons = sorted(r.reason for r in result.rejects)
    assert reasons == [
        "external_id, number: control or bidi-control characters removed",
        "name: control or bidi-control characters removed",
        "payment_url dropped: Value error, only https: links are used as payment links",
    ]
    assert all(r.ref == "x.csv:2" and r.dropped for r in result.rejects)
    return result.debtors["D1"], result.invoices["2026-0001"]


def hostile_context(tmp_path: Path, channel: str) -> Any:
    """A message context carrying what the connector made of the hostile row."""
    debtor, invoice = hostile_export(tmp_path)
    context = sample_context("reminder", channel, invoices=1)
    line = replace(
        context.invoices[0],
        number=invoice.number,
        external_id=invoice.external_id,
        payment_url=invoice.payment_url,
    )
    return replace(
        context,
        debtor=replace(context.debtor, name=debtor.name),
        invoices=(line,),
        payment=replace(context.payment, url=invoice.payment_url, reference=invoice.number),
    )


def env(tmp_path: Path) -> ActionEnvironment:
    async def no_document(instance: str, invoice_id: str) -> bytes | None:
        return None

    return ActionEnvironment(
        instance="mail",
        config_dir=tmp_path,
        templates=Templates(),
        clock=FrozenClock(),
        fetch_document=no_document,
    )


def test_a_hostile_row_reaches_no_header_link_or_sms(tmp_path: Path) -> None:
    mail = FileAction("mail", FileSettings(directory=tmp_path / "eml"), env(tmp_path))
    context = hostile_context(tmp_path, "email")
    payload = mail.render(context)
    message = asyncio.run(mail.compose(payload, context.key)).decode()

    headers = message.split("\r\n\r\n", 1)[0]
    assert "\r\nBcc:" not in headers and "\x00" not in message
    assert "To: Jan Bcc: victim@example.org Jansen" in headers.replace('"', "")
    assert RLO not in message and "javascript" not in message.lower()
    assert "2026-0001" in payload["subject"] or "2026-0001" in payload["text"]

    sms = SmsAction(
        "sms",
        SmsSettings.model_validate(
            {"provider": "cm", "product_token": TOKEN, "sender": "Voorbeeld"}
        ),
        env(tmp_path),
    )
    text = str(sms.render(hostile_context(tmp_path, "sms")))
    assert RLO not in text and "javascript" not in text.lower()


def test_a_line_break_in_a_stored_name_fails_permanently_not_in_doubt(tmp_path: Path) -> None:
    """A payload rendered before names were cleaned: building its headers fails before
    anything is sent, so the action is dead, not in doubt."""
    mail = FileAction("mail", FileSettings(directory=tmp_path / "eml"), env(tmp_path))
    context = sample_context("reminder", "email", invoices=1)
    payload = mail.render(context)
    payload["to_name"] = "Jan\r\nBcc: victim@example.org"

    with pytest.raises(PermanentActionError, match="headers cannot be built"):
        asyncio.run(mail.send(payload, context.key))
    assert not (tmp_path / "eml").exists() or not list((tmp_path / "eml").iterdir())


def test_a_nul_in_a_stored_name_does_not_reach_the_to_header(tmp_path: Path) -> None:
    mail = FileAction("mail", FileSettings(directory=tmp_path / "eml"), env(tmp_path))
    context = sample_context("reminder", "email", invoices=1)
    context = replace(context, debtor=replace(context.debtor, name=f"J.P.\x00 de {RLO}Vries"))

    payload = mail.render(context)
    message = asyncio.run(mail.compose(payload, context.key))

    assert payload["to_name"] == "J.P. de Vries"
    assert b"\x00" not in message and RLO.encode() not in message


# -- a user template that raises (issue 10 item 6) ---------------------------------------------

RAISING = {
    "ZeroDivisionError": "{{ 1 // (0 if debtor.external_id == 'D1' else 1) }}",
    "TypeError": "{{ debtor.name + (1 if debtor.external_id == 'D1' else '') }}",
}


@pytest.mark.parametrize("error", sorted(RAISING))
def test_a_template_that_raises_fails_its_action_and_the_rest_go_on(
    store: Store, tmp_path: Path, error: str
) -> None:
    templates = tmp_path / "templates" / "email"
    templates.mkdir(parents=True)
    (templates / "reminder.nl.j2").write_text(
        "{% block subject %}Herinnering " + RAISING[error] + "{% endblock %}"
        "{% block opening %}Wij misten uw betaling.{% endblock %}"
        "{% block closing %}Groet{% endblock %}"
    )
    book = Book(store, tmp_path, RecordingAction)
    settings = FileSettings(directory=tmp_path / "eml", from_address="debiteuren@voorbeeld.nl")
    book.config = replace(
        book.config,
        actions={"mail": ActionInstance("mail", "file", FileAction, settings)},
        outbox=book.config.outbox.model_copy(update={"templates": tmp_path / "templates"}),
    )
    book.book(invoice("F1", due=DUE), invoice("G1", debtor_id="D2", due=DUE))

    report = book.act()

    assert report.outcomes == {ActionState.DEAD: 1, ActionState.SENT: 1}
    by_debtor = {row.debtor_id: row for row in book.rows()}
    assert by_debtor["D2"].state == ActionState.SENT
    assert by_debtor["D1"].state == ActionState.DEAD
    assert error in by_debtor["D1"].last_error and "reminder.nl.j2" in by_debtor["D1"].last_error
    assert len(list((tmp_path / "eml").iterdir())) == 1
    again = book.act()
    assert again.ok and not again.outcomes  # the dead action is not retried every run
