"""Letters: the A4 PDF for a window envelope, its wording and figures, the print folder, the
seam for hybrid mail, and a letter through the real outbox from print folder to posting."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fpdf import FPDF
from pydantic import Field, ValidationError
from pypdf import PageObject, PdfReader

from debsync import outbox
from debsync.actions import letter
from debsync.actions.base import (
    ActionEnvironment,
    ActionSettings,
    ActionUnavailableError,
    MessageContext,
    Payload,
    PermanentActionError,
    Receipt,
    RenderError,
)
from debsync.actions.letter import (
    LetterAction,
    PrintLetterAction,
    PrintLetterSettings,
    build_pdf,
)
from debsync.config import (
    ActionInstance,
    Config,
    ConnectorInstance,
    CreditorSettings,
    OutboxSettings,
)
from debsync.model import Address, DebtorKind, Language
from debsync.outbox.executor import Dispatcher, receipt_rule
from debsync.plugins import Plugins
from debsync.policy import Policy, Step
from debsync.store import Store
from debsync.store.schema import ActionState as State
from debsync.sync import SyncEngine
from debsync.templates import Templates
from debsync.testing.samples import SAMPLE_CREDITOR, sample_context

from conftest import FrozenClock
from fakes import FakeConnector, FakeSettings, debtor, invoice, snapshot

PT = 25.4 / 72  # millimetres per PostScript point
A4_PT = (595.28, 841.89)
TEMPLATES = Templates()


def make_action(tmp_path: Path, **settings: Any) -> PrintLetterAction:
    env = ActionEnvironment(instance="post", config_dir=tmp_path, templates=TEMPLATES)
    return PrintLetterAction("post", PrintLetterSettings(**settings), env)


def render(context: MessageContext) -> Payload:
    return make_action(Path(".")).render(context)


def with_debtor(context: MessageContext, **changes: Any) -> MessageContext:
    return replace(context, debtor=replace(context.debtor, **changes))


@dataclass(frozen=True)
class Run:
    """One line of text as drawn: baseline position from the top-left corner, in mm."""

    x: float
    y: float
    size_pt: float
    text: str


def runs(pdf: bytes) -> list[list[Run]]:
    """Every text line per page, with where it was drawn."""
    return [_page_runs(page) for page in PdfReader(io.BytesIO(pdf)).pages]


def _page_runs(page: PageObject) -> list[Run]:
    found: list[Run] = []

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        if text.strip():
            line = text.replace("\xa0", " ").strip()
            found.append(Run(tm[4] * PT, 297 - tm[5] * PT, size, line))

    page.extract_text(visitor_text=visit)
    return found


def text_of(pdf: bytes) -> str:
    """The whole letter as extracted text, with non-breaking spaces as plain ones."""
    return "\n".join(r.text for page in runs(pdf) for r in page)


class Window:
    """The envelope window: is a line drawn entirely inside it? Measured with the letter's
    own font, so the test also sees a line that runs past the window's right edge."""

    def __init__(self) -> None:
        self.measure = FPDF(unit="mm")
        self.measure.add_font(letter.FONT, "", letter.font_paths()[""])

    def __contains__(self, run: Run) -> bool:
        left, top = letter.WINDOW_LEFT_MM, letter.WINDOW_TOP_MM
        right, bottom = left + letter.WINDOW_WIDTH_MM, top + letter.WINDOW_HEIGHT_MM
        self.measure.set_font(letter.FONT, size=run.size_pt)
        width = self.measure.get_string_width(run.text)
        return (
            left <= run.x
            and run.x + width <= right
            and top <= run.y - run.size_pt * PT <= run.y <= bottom
        )


@pytest.fixture(scope="module")
def window() -> Iterator[Window]:
    found = Window()
    yield found
    letter.close_fonts(found.measure)


@pytest.fixture(scope="module")
def nl_payload() -> Payload:
    return render(sample_context("veertiendagenbrief", "letter"))


@pytest.fixture(scope="module")
def nl_pdf(nl_payload: Payload) -> bytes:
    return build_pdf(nl_payload)


@pytest.fixture(scope="module")
def en_pdf() -> bytes:
    return build_pdf(render(sample_context("veertiendagenbrief", "letter", Language.EN)))


# -- the PDF ----------------------------------------------------------------------------------


def test_the_pdf_is_a4_and_the_same_payload_gives_the_same_bytes(
    nl_payload: Payload, nl_pdf: bytes
) -> None:
    assert nl_pdf.startswith(b"%PDF-")
    pages = PdfReader(io.BytesIO(nl_pdf)).pages
    assert [(float(p.mediabox.width), float(p.mediabox.height)) for p in pages] == [A4_PT]
    again = build_pdf(json.loads(json.dumps(nl_payload)))  # as stored by the outbox
    assert again == nl_pdf
    info = PdfReader(io.BytesIO(nl_pdf)).metadata
    assert info is not None and info["/CreationDate"].startswith("D:20261123000000+01")


@pytest.mark.slow  # a second interpreter imports fpdf2: about three seconds
def test_another_process_builds_the_same_bytes(nl_payload: Payload, nl_pdf: bytes) -> None:
    """No hash-seed, clock or random id leaks into the file: another interpreter agrees."""
    script = (
        "import hashlib, json, sys\n"
        "from debsync.actions.letter import build_pdf\n"
        "print(hashlib.sha256(build_pdf(json.load(sys.stdin))).hexdigest())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(nl_payload),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert done.stdout.strip() == hashlib.sha256(nl_pdf).hexdigest()


def test_the_address_and_return_address_sit_in_the_envelope_window(
    nl_pdf: bytes, window: Window
) -> None:
    first = runs(nl_pdf)[0]
    recipient = [r for r in first if r.text in ("J.P. de Vries", "Dorpsstraat 14 A")]
    recipient += [r for r in first if r.text == "1234 AB  HAARLEM"]
    assert [r.text for r in recipient] == ["J.P. de Vries", "Dorpsstraat 14 A", "1234 AB  HAARLEM"]
    assert all(r in window for r in recipient), recipient
    assert all(r.size_pt == 10 for r in recipient)  # PostNL: 10 to 12 pt
    (sender,) = [r for r in first if r.text.startswith("Voorbeeld Installatietechniek B.V., ")]
    assert sender.text == "Voorbeeld Installatietechniek B.V., Industrieweg 12, 3542 AD Utrecht"
    assert sender in window and sender.y < recipient[0].y and sender.size_pt < 8
    # Nothing else on the page shows through the window.
    assert [r for r in first if r in window and r not in (*recipient, sender)] == []


def test_the_veertiendagenbrief_in_dutch_states_what_the_law_requires(nl_pdf: bytes) -> None:
    text = text_of(nl_pdf)
    lines = text.splitlines()
    assert "Laatste aanmaning: facturen 2026-0001, 2026-0002" in text
    assert "23 november 2026" in lines  # the letter's date, long form
    assert "2026-0001, 2026-0002 / 3f2a9c0d41b7" in lines  # ons kenmerk: numbers and action id
    assert "Geachte heer/mevrouw," in lines
    flat = " ".join(text.split())
    # HR 25-11-2016 (ECLI:NL:HR:2016:2704): the term from the day after delivery.
    assert "binnen veertien dagen vanaf de dag nadat deze brief bij u is bezorgd" in flat
    # The exact collection costs (15% of € 1.105,00), in Dutch notation.
    assert "Deze kosten bedragen € 165,75." in flat
    assert "Besluit vergoeding voor buitengerechtelijke incassokosten" in flat
    assert "als niet verzonden beschouwen" in flat
    # The invoice table: number, dates, outstanding amount; the principal below it.
    assert "2026-0001 14-09-2026 14-10-2026 € 605,00" in flat
    assert "2026-0002 04-09-2026 04-10-2026 € 500,00" in flat
    assert "Totaal openstaand € 1.105,00" in flat
    assert (
        "Wilt u het bedrag overmaken naar NL91 ABNA 0417 1643 00 ten name van Voorbeeld "
        "Installatietechniek B.V., onder vermelding van “2026-0001, 2026-0002”." in flat
    )
    assert lines[-3:] == [  # regards, the creditor, then the footer and page number
        "Voorbeeld Installatietechniek B.V.",
        "KvK 12345678 · Btw-nr. NL123456789B01 · IBAN NL91 ABNA 0417 1643 00 · BIC ABNANL2A",
        "Pagina 1 van 1",
    ]
    assert "Met vriendelijke groet," in lines
    assert "Telefoon 030 123 4567" in lines and "voorbeeld-installatie.nl" in lines


def test_the_veertiendagenbrief_in_english(en_pdf: bytes) -> None:
    flat = " ".join(text_of(en_pdf).split())
    assert "Final reminder: invoices 2026-0001, 2026-0002" in flat
    assert "23 November 2026" in flat and "Dear Sir or Madam," in flat
    assert "within fourteen days from the day after this letter has been delivered to you" in flat
    assert "These costs amount to €165.75." in flat
    assert "2026-0001 14 Sept 2026 14 Oct 2026 €605.00" in flat
    assert "Total outstanding €1,105.00" in flat
    assert "Chamber of Commerce 12345678" in flat and "Page 1 of 1" in flat
    assert "Kind regards," in flat and "Then please disregard this letter." in flat


def test_accents_the_euro_sign_and_a_long_name_print_inside_the_window(window: Window) -> None:
    name = "Stichting Vrienden van Café De Ruïne en de Historische Tuinen van Ruïnerwold"
    context = with_debtor(
        sample_context("veertiendagenbrief", "letter"),
        name=name,
        address=Address(lines=("Brinkweg 3",), postcode="7961 AA", city="Ruïnerwold"),
    )
    pdf = build_pdf(render(context))
    first = runs(pdf)[0]
    shown = [r for r in first if r in window and not r.text.startswith("Voorbeeld")]
    assert " ".join(r.text for r in shown[:-2]) == name  # shrunk, wrapped, nothing lost
    assert [r.text for r in shown[-2:]] == ["Brinkweg 3", "7961 AA  RUÏNERWOLD"]
    assert len(shown) == 4 and {r.size_pt for r in shown} == {8.0}
    flat = " ".join(text_of(pdf).split())
    assert "Het openstaande bedrag is € 1.105,00." in flat
    assert "Kunt u het bedrag niet in één keer betalen" in flat
    fonts = {
        str(font["/BaseFont"])
        for page in PdfReader(io.BytesIO(pdf)).pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert fonts == {"/MPDFAA+DejaVuSansBook", "/MPDFAA+DejaVuSansBold"}
    assert b"/FontFile2" in pdf  # embedded TrueType, not a Latin-1 core font


def test_a_long_letter_runs_over_pages_with_numbers_and_repeated_headings() -> None:
    pdf = build_pdf(render(sample_context("veertiendagenbrief", "letter", invoices=40)))
    pages = runs(pdf)
    count = len(pages)
    assert count >= 2
    assert PdfReader(io.BytesIO(pdf)).pages[-1].mediabox.height == pytest.approx(A4_PT[1])
    for number, page in enumerate(pages, start=1):
        assert page[-1].text == f"Pagina {number} van {count}"
    listed = [r.text for page in pages for r in page if re.fullmatch(r"2026-\d{4}", r.text)]
    assert listed == [f"2026-{n:04d}" for n in range(1, 41)]  # every invoice, once, in order
    # The table's headings repeat on the page where it continues, under a running header.
    continued = pages[1]
    assert continued[0].text == (
        "Voorbeeld Installatietechniek B.V. · Ons kenmerk 2026-0001, 2026-0002, 2026-0003 +37 "
        "/ 3f2a9c0d41b7"
    )
    assert any(r.text == "Factuurdatum" for r in continued)


def test_a_long_return_address_takes_two_small_lines_in_the_window(window: Window) -> None:
    street = Address(
        lines=("Bedrijventerrein De Wetering, Industrieweg 12",), postcode="3542 AD", city="Utrecht"
    )
    name = "Coöperatieve Vereniging Installatietechniek Midden-Nederland U.A."
    creditor = replace(SAMPLE_CREDITOR, name=name, address=street)
    context = replace(sample_context("reminder", "letter"), creditor=creditor)
    first = runs(build_pdf(render(context)))[0]
    returned = [r for r in first if r in window and r.size_pt == 6]
    assert " ".join(r.text for r in returned) == (
        "Coöperatieve Vereniging Installatietechniek Midden-Nederland U.A., Bedrijventerrein "
        "De Wetering, Industrieweg 12, 3542 AD Utrecht"
    )
    recipient = [r for r in first if r in window and r.size_pt == 10]
    assert len(returned) == 2 and returned[-1].y < recipient[0].y - 3


def test_an_address_that_wraps_past_the_window_is_not_sent(tmp_path: Path) -> None:
    context = with_debtor(
        sample_context("reminder", "letter"),
        name="Vereniging van Eigenaren Appartementencomplex De Hoge Dijk aan het Spaarne "
        "te Haarlem, afdeling Financiële Administratie en Debiteurenbeheer",
        address=Address(
            lines=("T.a.v. de penningmeester", "Postbus 1234", "Spaarne 1"),
            postcode="2011 CL",
            city="Haarlem",
        ),
    )
    action = make_action(tmp_path)
    payload = action.render(context)  # six lines as data; too many once wrapped to the window
    with pytest.raises(PermanentActionError) as caught:
        asyncio.run(action.send(payload, payload["key"]))
    assert str(caught.value) == (
        "letter to debtor D20017: the address does not fit the envelope window"
    )
    assert not (tmp_path / "letters").exists()


def test_a_foreign_address_ends_with_the_country_in_capitals() -> None:
    belgian = Address(lines=("Grote Markt 1",), postcode="1000", city="Brussel", country="BE")
    payload = render(with_debtor(sample_context("reminder", "letter"), address=belgian))
    assert payload["recipient"]["window"] == [
        "J.P. de Vries",
        "Grote Markt 1",
        "1000 BRUSSEL",
        "BELGIË",
    ]
    assert payload["recipient"]["country"] == "BE"


# -- what cannot be printed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (None, "debtor D20017 has no postal address"),
        (Address(), "debtor D20017 has no postal address"),
        (
            Address(lines=("Dorpsstraat 14 A",), city="Haarlem"),
            "debtor D20017 has an incomplete postal address (street, postcode and town are needed)",
        ),
        (
            Address(lines=("a", "b", "c", "d", "e"), postcode="1234 AB", city="Haarlem"),
            "debtor D20017: the address has 7 lines; a window envelope shows at most 6",
        ),
    ],
)
def test_no_usable_address_is_a_render_error_naming_only_the_debtor_id(
    address: Address | None, message: str
) -> None:
    context = with_debtor(sample_context("veertiendagenbrief", "letter"), address=address)
    with pytest.raises(RenderError) as caught:
        render(context)
    assert str(caught.value) == message


def test_text_the_font_cannot_draw_is_a_render_error() -> None:
    context = with_debtor(sample_context("reminder", "letter"), name="王小明")
    with pytest.raises(RenderError) as caught:
        render(context)
    assert str(caught.value) == (
        "letter to debtor D20017: the letter font cannot print U+738B (in the recipient)"
    )


def test_a_creditor_without_an_address_cannot_send_letters() -> None:
    context = replace(
        sample_context("reminder", "letter"), creditor=replace(SAMPLE_CREDITOR, address=None)
    )
    with pytest.raises(RenderError, match=r"\[creditor\] has no postal address"):
        render(context)


# -- the payload and the preview ------------------------------------------------------------


def test_the_payload_is_the_structured_letter(nl_payload: Payload) -> None:
    assert json.loads(json.dumps(nl_payload)) == nl_payload
    assert nl_payload["format"] == "debsync.letter/1"
    assert nl_payload["subject"] == "Laatste aanmaning: facturen 2026-0001, 2026-0002"
    assert nl_payload["recipient"]["window"] == [
        "J.P. de Vries",
        "Dorpsstraat 14 A",
        "1234 AB  HAARLEM",
    ]
    assert nl_payload["invoices"] == [
        {"number": "2026-0001", "issue_date": "14-09-2026", "due_date": "14-10-2026",
         "open": "€\xa0605,00"},
        {"number": "2026-0002", "issue_date": "04-09-2026", "due_date": "04-10-2026",
         "open": "€\xa0500,00"},
    ]  # fmt: skip
    assert nl_payload["totals"] == [
        {"label": "Totaal openstaand", "amount": "€\xa01.105,00", "grand": False}
    ]
    assert nl_payload["opening"][1] == (
        "Wij verzoeken u dit bedrag te betalen binnen veertien dagen vanaf de dag nadat deze "
        "brief bij u is bezorgd."
    )


def test_an_aanmaning_lists_interest_and_the_total_due() -> None:
    payload = render(sample_context("aanmaning", "letter", kind=DebtorKind.BUSINESS))
    assert payload["totals"] == [
        {"label": "Totaal openstaand", "amount": "€\xa01.105,00", "grand": False},
        {"label": "Wettelijke rente", "amount": "€\xa012,34", "grand": False},
        {"label": "Totaal te betalen", "amount": "€\xa01.117,34", "grand": True},
    ]
    assert payload["closing"][0].startswith("Heeft u inmiddels betaald? Dan kunt u deze brief")


def test_the_preview_reads_as_the_letter(nl_payload: Payload) -> None:
    text = make_action(Path(".")).preview(nl_payload)
    assert text.startswith(
        "Voorbeeld Installatietechniek B.V., Industrieweg 12, 3542 AD Utrecht\n\n"
        "J.P. de Vries\nDorpsstraat 14 A\n1234 AB  HAARLEM\n\n"
        "Datum: 23 november 2026\nOns kenmerk: 2026-0001, 2026-0002 / 3f2a9c0d41b7\n"
        "Onderwerp: Laatste aanmaning: facturen 2026-0001, 2026-0002\n\nGeachte heer/mevrouw,"
    )
    assert "2026-0002  04-09-2026    04-10-2026     €\xa0500,00\n" in text
    assert "Deze kosten bedragen €\xa0165,75." in text


def test_a_payload_that_is_not_a_letter_is_rejected() -> None:
    with pytest.raises(ValidationError):
        build_pdf({"format": "debsync.letter/1", "subject": "x"})


# -- the print folder -----------------------------------------------------------------------


def test_printing_writes_the_pdf_atomically_and_the_receipt_proves_it(
    tmp_path: Path, nl_payload: Payload, nl_pdf: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    action = make_action(tmp_path, directory="out/letters")
    key = nl_payload["key"]
    folder = tmp_path / "out" / "letters"
    folder.mkdir(parents=True)
    (folder / f"{key}.pdf").write_bytes(b"%PDF- left by an attempt that was cut off")
    caplog.set_level(logging.INFO, logger="debsync.action")

    async def send() -> Receipt:
        async with action:
            return await action.send(nl_payload, key)

    receipt = asyncio.run(send())

    assert sorted(p.name for p in folder.iterdir()) == [f"{key}.pdf"]  # no partial files left
    written = (folder / f"{key}.pdf").read_bytes()
    assert written == nl_pdf  # rewritten whole: sending again cannot reach the debtor twice
    assert receipt == Receipt(
        provider_id=f"{key}.pdf",
        details={"path": str(folder / f"{key}.pdf")},
        dispatched=False,
        content_sha256=hashlib.sha256(written).hexdigest(),
    )
    assert PrintLetterAction.idempotent and PrintLetterAction.channel == "letter"
    assert key in caplog.text and "Vries" not in caplog.text


def test_the_print_folder_is_relative_to_the_configuration(tmp_path: Path) -> None:
    assert make_action(tmp_path).directory == tmp_path / "letters"
    shared = tmp_path / "shared"
    assert make_action(tmp_path / "config", directory=shared).directory == shared


def test_a_print_folder_that_cannot_be_written_makes_the_channel_unavailable(
    tmp_path: Path, nl_payload: Payload, nl_pdf: bytes
) -> None:
    (tmp_path / "letters").write_text("a file where the folder should be")
    action = make_action(tmp_path)
    with pytest.raises(ActionUnavailableError, match=r"print folder .*letters cannot be written"):
        asyncio.run(action.deliver(nl_pdf, nl_payload, nl_payload["key"]))


def test_an_action_id_that_is_no_file_name_is_refused(
    tmp_path: Path, nl_payload: Payload, nl_pdf: bytes
) -> None:
    action = make_action(tmp_path)
    with pytest.raises(PermanentActionError, match="not usable as a file name"):
        asyncio.run(action.deliver(nl_pdf, nl_payload, "../../outside"))
    assert list(tmp_path.iterdir()) == []


def test_the_settings_are_strict_and_documented() -> None:
    with pytest.raises(ValidationError):
        PrintLetterSettings.model_validate({"directroy": "x"})
    with pytest.raises(ValidationError):
        PrintLetterSettings.model_validate({"transport": "fax"})
    assert all(f.description for f in PrintLetterSettings.model_fields.values())


def test_the_letter_type_registers_like_a_plugin() -> None:
    plugins = Plugins(entry_points=False, extra=[("letters", letter)])
    assert plugins.action_types()["letter"] is PrintLetterAction


# -- the hybrid-mail seam ------------------------------------------------------------------


class HybridSettings(ActionSettings):
    product: str = Field(default="standard", description="Postal product.")


class HybridMail(LetterAction[HybridSettings]):
    """A provider that prints and posts: what a third-party plugin writes."""

    type_name: ClassVar[str] = "letter-hybrid"
    Settings: ClassVar[type[ActionSettings]] = HybridSettings
    idempotent: ClassVar[bool] = True
    handed_over: ClassVar[list[tuple[bytes, str, list[str]]]] = []

    async def deliver(self, pdf: bytes, payload: Payload, key: str) -> Receipt:
        self.handed_over.append((pdf, key, payload["recipient"]["window"]))
        return Receipt(provider_id="hm-123", dispatched=True, dispatched_on=date(2026, 11, 24))


def test_a_hybrid_mail_provider_delivers_the_same_pdf(nl_payload: Payload, nl_pdf: bytes) -> None:
    env = ActionEnvironment(instance="hybrid", config_dir=Path("."), templates=TEMPLATES)
    action = HybridMail("hybrid", HybridSettings(), env)
    receipt = asyncio.run(action.send(nl_payload, nl_payload["key"]))
    assert HybridMail.handed_over == [
        (nl_pdf, nl_payload["key"], ["J.P. de Vries", "Dorpsstraat 14 A", "1234 AB  HAARLEM"])
    ]
    assert receipt == Receipt(
        provider_id="hm-123",
        dispatched=True,
        dispatched_on=date(2026, 11, 24),
        content_sha256=hashlib.sha256(nl_pdf).hexdigest(),
    )


# -- through the outbox ---------------------------------------------------------------------


LETTER_POLICY = Policy(
    name="default", steps=(Step(name="reminder", channels=("letter",), days_after_due=1),)
)


def test_a_printed_letter_waits_in_the_outbox_until_it_is_posted(
    sqlite_store: Store, tmp_path: Path
) -> None:
    clock = FrozenClock(datetime(2026, 10, 2, 8, 0, tzinfo=UTC))
    config = Config(
        path=tmp_path / "connectors.toml",
        store_url="",
        creditor=CreditorSettings(
            name="Voorbeeld B.V.",
            address=Address(lines=("Industrieweg 12",), postcode="3542 AD", city="Utrecht"),
            iban="NL91ABNA0417164300",
        ),
        policies={"default": LETTER_POLICY},
        connectors={"books": ConnectorInstance("books", "fake", FakeConnector, FakeSettings())},
        actions={
            "post": ActionInstance("post", "letter", PrintLetterAction, PrintLetterSettings())
        },
        outbox=OutboxSettings(lease_seconds=60, retry_initial_seconds=60, max_attempts=3),
    )
    address = {"lines": ["Kerkstraat 1"], "postcode": "1234 AB", "city": "Utrecht"}
    pages = snapshot(invoice("F1", due=date(2026, 10, 1)), debtors=(debtor("D1", address=address),))
    sync = SyncEngine(sqlite_store, clock=clock).run(
        config.connectors["books"], FakeConnector(pages), allow_mass_close=True
    )
    assert asyncio.run(sync).ok
    dispatcher = Dispatcher(config, sqlite_store, Plugins(entry_points=False), clock=clock)

    report = asyncio.run(dispatcher.act())

    assert report.outcomes[State.SENT] == 1
    (row,) = outbox.rows(sqlite_store)
    printed = tmp_path / "letters" / f"{row.key}.pdf"
    assert row.provider_id == printed.name and row.dispatched_on is None
    assert row.receipt["content_sha256"] == hashlib.sha256(printed.read_bytes()).hexdigest()
    assert "Debiteur D1 B.V." in text_of(printed.read_bytes()).splitlines()

    posted = outbox.mark_posted(
        sqlite_store, row.key[:12], date(2026, 10, 5), "tester", clock(), receipt_rule(config)
    )
    assert posted.key == row.key
    (after,) = outbox.rows(sqlite_store)
    assert after.dispatched_on == date(2026, 10, 5)
