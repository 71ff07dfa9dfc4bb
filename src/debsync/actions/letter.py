"""Letters: a dunning step as an A4 PDF for a left-window envelope.

The veertiendagenbrief's legal copy goes by post, and any other step may too. ``render``
builds the whole letter as structured, JSON-serialisable text (:class:`LetterContent`): the
step's wording from ``letter/<template>.<language>.j2`` (blocks ``subject``, ``opening`` and
``closing``), the address lines for the window, the invoice table with amounts already
formatted for the debtor's language, the payment instructions and the footer.
:func:`build_pdf` lays that out as a PDF. It is a pure function of the payload with a fixed
creation date and no random ids, so the same payload always gives the same bytes and the
SHA-256 in the receipt proves what was sent.

How the PDF then leaves is the transport. :class:`LetterAction` renders and builds;
:meth:`LetterAction.deliver` hands the PDF over. The built-in ``letter`` type
(:class:`PrintLetterAction`) writes it into a print folder, where it waits for a person to
print and post it and to record the posting date with ``debsync letters posted``. A
hybrid-mail provider, a company that prints and posts for you, is another subclass; see
``docs/actions/letter.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal, TypeVar, cast

import phonenumbers
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency
from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from fpdf.fonts import FontFace, TTFFont
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from debsync import hookimpl
from debsync.actions.base import (
    Action,
    ActionSettings,
    ActionUnavailableError,
    CreditorContext,
    DebtorContext,
    MessageContext,
    Payload,
    PermanentActionError,
    Receipt,
    RenderError,
)
from debsync.actions.files import write_atomically
from debsync.clock import AMSTERDAM
from debsync.hookspecs import RegisterAction
from debsync.model import Address, Language
from debsync.templates import LABELS, LOCALES, Templates, paragraphs

# -- the sheet and the envelope window (millimetres from the sheet's top-left corner) ---------

# A left-window envelope for an A4 folded in three: EA5/6 (110 x 220 mm, DL elsewhere) or
# C5/6 (114 x 229 mm). The window rectangle on the sheet is the address field of DIN 5008
# form B, the layout these envelopes are made for; Deutsche Post's hybrid-mail specification
# states it as 45 mm from the top, 20 mm from the left, 85 mm wide and 45 mm high. NEN 1026
# (Dutch letter paper) is not freely published; Dutch window envelopes follow the same ISO 269
# sizes. docs/actions/letter.md lists the sources.
WINDOW_LEFT_MM = 20.0
WINDOW_TOP_MM = 45.0
WINDOW_WIDTH_MM = 85.0
WINDOW_HEIGHT_MM = 45.0
WINDOW_MARGIN_MM = 4.0
"""Kept clear inside the window: a folded sheet moves a few millimetres in its envelope."""

RETURN_LINE_TOP_MM = 54.0
"""The sender's return address, one line (PostNL: top left, in a single line)."""
ADDRESS_TOP_MM = 62.7
"""First recipient line: DIN 5008 form B, below the 17.7 mm zone for the return address."""
ADDRESS_MAX_LINES = 6
"""PostNL: an address has 3 to 6 lines."""
ADDRESS_FONT_SIZES = (10.0, 9.0, 8.0)
"""PostNL recommends 10 to 12 pt for sorting machines; smaller only to fit a long address."""
RETURN_FONT_SIZES = (7.0, 6.5, 6.0)
RETURN_MAX_LINES = 2
"""A long return address may take two lines: the zone above the recipient holds them."""

PAGE_MARGIN_LEFT_MM = 25.0
PAGE_MARGIN_RIGHT_MM = 20.0
BODY_WIDTH_MM = 210.0 - PAGE_MARGIN_LEFT_MM - PAGE_MARGIN_RIGHT_MM
LETTERHEAD_LEFT_MM = WINDOW_LEFT_MM + WINDOW_WIDTH_MM + 5.0
"""The creditor's letterhead stands right of the window, so it never shows through it."""
LETTERHEAD_TOP_MM = 15.0
META_TOP_MM = 98.0
"""Date, reference and subject: below the window and the first fold."""
CONTINUATION_TOP_MM = 25.0
FOOTER_TOP_MM = 281.0
BOTTOM_MARGIN_MM = 22.0

FONT = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
"""DejaVu Sans 2.37 (Bitstream Vera licence, data/fonts/LICENSE): the PDF core fonts are
Latin-1 only and lack €; DejaVu covers Latin, Greek and Cyrillic, so debtors' names print."""
TEXT_PT = 10.0
LINE_MM = 5.0
SMALL_PT = 8.0
TABLE_COLUMNS_MM = (55.0, 35.0, 35.0, 40.0)
GREY = 110
NBSP = "\u00a0"

REFERENCE_NUMBERS = 3
"""Invoice numbers named in "our reference"; more are counted ("+42"), the table lists all."""
THIS_LETTER = {Language.NL: "deze brief", Language.EN: "this letter"}
"""``this_message`` in the templates ("Heeft u betaald? Dan kunt u deze brief ...")."""
"""Key of the posting date (ISO) in a hybrid-mail receipt's ``details``."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


# -- the payload --------------------------------------------------------------------------


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipient(_Part):
    """The debtor's address, as lines for the window and as parts for a hybrid-mail API."""

    debtor_id: str
    name: str
    street: list[str]
    postcode: str
    city: str
    country: str
    window: list[str]


class Sender(_Part):
    name: str
    letterhead: list[str]
    return_address: str
    footer: list[str]
    """Registration and bank details, one item each ("KvK 12345678")."""


class InvoiceRow(_Part):
    number: str
    issue_date: str
    due_date: str
    open: str


class TotalRow(_Part):
    label: str
    amount: str
    grand: bool = False


class Labels(_Part):
    date: str
    our_reference: str
    subject: str
    columns: list[str]
    page: str
    """``"Pagina {page} van {pages}"``."""


class LetterContent(_Part):
    """The structured letter ``render`` returns: every text already in the debtor's language,
    every amount and date already formatted, so the PDF needs no locale data."""

    format: Literal["debsync.letter/1"] = "debsync.letter/1"
    key: str
    language: Language
    date: date
    date_text: str
    reference: str
    sender: Sender
    recipient: Recipient
    labels: Labels
    subject: str
    salutation: str
    opening: list[str]
    invoices: list[InvoiceRow]
    totals: list[TotalRow]
    payment: list[str]
    closing: list[str]
    regards: str
    signature: str


# -- settings and actions -----------------------------------------------------------------


class PrintLetterSettings(ActionSettings):
    transport: Literal["print"] = Field(
        default="print",
        description=(
            '"print": write each letter as a PDF into `directory` for a person to print and '
            "post. Hybrid-mail providers are action types of their own built on LetterAction."
        ),
    )
    directory: Path = Field(
        default=Path("letters"),
        description=(
            "Print folder, relative to the directory of connectors.toml unless absolute; "
            "created if missing. Each letter is <action id>.pdf."
        ),
    )


LetterSettingsT = TypeVar("LetterSettingsT", bound=ActionSettings)


class LetterAction(Action[LetterSettingsT]):
    """A letter channel: renders and lays out the letter; a subclass delivers the PDF.

    A transport implements :meth:`deliver` only. The receipt's ``content_sha256`` is always
    the hash of the PDF handed to :meth:`deliver`.
    """

    channel: ClassVar[str] = "letter"
    uses_templates: ClassVar[bool] = True

    def render(self, context: MessageContext) -> Payload:
        return render_letter(context, self.env.templates).model_dump(mode="json")

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        try:
            pdf = await asyncio.to_thread(build_pdf, payload)
        except ValidationError:
            raise PermanentActionError(f"payload of {idempotency_key} is not a letter") from None
        except RenderError as exc:
            raise PermanentActionError(str(exc)) from None
        receipt = await self.deliver(pdf, payload, idempotency_key)
        return replace(receipt, content_sha256=hashlib.sha256(pdf).hexdigest())

    @abstractmethod
    async def deliver(self, pdf: bytes, payload: Payload, key: str) -> Receipt:
        """Hand the PDF to the transport and say what happened.

        Return ``dispatched=False`` while the letter still waits for a person to post it; a
        provider that posts it returns ``dispatched=True`` with the posting date as
        ``dispatched_on``, because the legal term counts from that date. Raise the
        :mod:`debsync.actions.base` errors as for any action.
        """

    def preview(self, payload: Payload) -> str:
        return letter_text(LetterContent.model_validate(payload))


class PrintLetterAction(LetterAction[PrintLetterSettings]):
    """The built-in transport: a PDF in the print folder, posted later by a person."""

    type_name: ClassVar[str] = "letter"
    Settings: ClassVar[type[ActionSettings]] = PrintLetterSettings
    idempotent: ClassVar[bool] = True  # rewriting the file cannot reach the debtor twice

    @property
    def directory(self) -> Path:
        directory = self.settings.directory.expanduser()
        return directory if directory.is_absolute() else self.env.config_dir / directory

    async def deliver(self, pdf: bytes, payload: Payload, key: str) -> Receipt:
        if not _SAFE_NAME.fullmatch(key):
            raise PermanentActionError(f"action id {key!r} is not usable as a file name")
        name = f"{key}.pdf"
        try:
            path = await asyncio.to_thread(write_atomically, self.directory / name, pdf, mode=0o666)
        except OSError as exc:
            raise ActionUnavailableError(
                f"print folder {self.directory} cannot be written: {exc.strerror or exc}"
            ) from None
        self.env.logger.info("letter %s is in the print folder as %s", key, name)
        return Receipt(provider_id=name, details={"path": str(path)}, dispatched=False)


# -- rendering: context -> LetterContent ---------------------------------------------------


def render_letter(context: MessageContext, templates: Templates) -> LetterContent:
    """The letter for ``context``, its wording from ``templates``.

    :raises RenderError: no usable postal address, or text the letter font cannot print.
    """
    language = context.language
    t = LABELS[language]
    locale = LOCALES[language]

    def money(amount: Decimal) -> str:
        return str(format_currency(amount, context.currency, locale=locale))

    def short(day: date) -> str:
        return str(format_date(day, "short", locale=locale))

    recipient = _recipient(context.debtor, language)
    sender = _sender(context.creditor, language)
    texts = templates.blocks(
        "letter",
        context,
        ("subject", "opening", "closing"),
        this_message=THIS_LETTER[language],
    )
    numbers = ", ".join(line.number for line in context.invoices[:REFERENCE_NUMBERS])
    if len(context.invoices) > REFERENCE_NUMBERS:
        numbers += f" +{len(context.invoices) - REFERENCE_NUMBERS}"
    totals: list[TotalRow] = []
    claims_more = context.interest is not None or context.costs is not None
    if len(context.invoices) > 1 or claims_more:
        totals.append(TotalRow(label=t["principal"], amount=money(context.principal)))
    if context.interest is not None:
        totals.append(TotalRow(label=t["interest"], amount=money(context.interest)))
    if context.costs is not None:
        totals.append(TotalRow(label=t["costs"], amount=money(context.costs)))
    if claims_more:
        totals.append(TotalRow(label=t["total"], amount=money(context.total), grand=True))
    payment: list[str] = []
    if context.payment.iban:
        payment.append(
            f"{t['pay_to']} {_iban(context.payment.iban)} {t['in_name_of']} "
            f"{context.payment.beneficiary}, {t['reference']} “{context.payment.reference}”."
        )
    if context.payment.url:
        payment.append(f"{t['pay_online']}: {context.payment.url}")
    content = LetterContent(
        key=context.key,
        language=language,
        date=context.today,
        date_text=str(format_date(context.today, "long", locale=locale)),
        reference=f"{numbers} / {context.key[:12]}",
        sender=sender,
        recipient=recipient,
        labels=Labels(
            date=t["date"],
            our_reference=t["our_reference"],
            subject=t["subject"],
            columns=[t["invoice"], t["invoice_date"], t["due_date"], t["open"]],
            page=f"{t['page']} {{page}} {t['of']} {{pages}}",
        ),
        subject=" ".join(texts["subject"].split()),
        salutation=t["salutation"],
        opening=paragraphs(texts["opening"]),
        invoices=[
            InvoiceRow(
                number=line.number,
                issue_date=short(line.issue_date),
                due_date=short(line.due_date),
                open=money(line.open_amount),
            )
            for line in context.invoices
        ],
        totals=totals,
        payment=payment,
        closing=paragraphs(texts["closing"]),
        regards=t["regards"],
        signature=context.creditor.name,
    )
    check_printable(content)
    return content


def _locality(address: Address, *, capitals: bool) -> str:
    """``1234 AB  HAARLEM``: PostNL puts two spaces between a Dutch postcode and the town."""
    city = address.city.upper() if capitals else address.city
    gap = "  " if address.country == "NL" and capitals else " "
    return gap.join(part for part in (address.postcode, city) if part)


def _country(code: str, language: Language) -> str:
    return str(Locale.parse(LOCALES[language]).territories.get(code, code))


def _recipient(debtor: DebtorContext, language: Language) -> Recipient:
    address = debtor.address
    street = [line for line in address.lines if line.strip()] if address else []
    if address is None or not (street or address.postcode or address.city):
        raise RenderError(f"debtor {debtor.external_id} has no postal address")
    if not street or not address.city or (address.country == "NL" and not address.postcode):
        raise RenderError(
            f"debtor {debtor.external_id} has an incomplete postal address "
            "(street, postcode and town are needed)"
        )
    window = [debtor.name, *street, _locality(address, capitals=True)]
    if address.country != "NL":
        window.append(_country(address.country, language).upper())
    if len(window) > ADDRESS_MAX_LINES:
        raise RenderError(
            f"debtor {debtor.external_id}: the address has {len(window)} lines; a window "
            f"envelope shows at most {ADDRESS_MAX_LINES}"
        )
    return Recipient(
        debtor_id=debtor.external_id,
        name=debtor.name,
        street=street,
        postcode=address.postcode,
        city=address.city,
        country=address.country,
        window=window,
    )


def _sender(creditor: CreditorContext, language: Language) -> Sender:
    t = LABELS[language]
    address = creditor.address
    if address is None or not address.city:
        raise RenderError("[creditor] has no postal address: a letter needs a return address")
    lines = [*address.lines, _locality(address, capitals=False)]
    if address.country != "NL":
        lines.append(_country(address.country, language))
    letterhead = list(lines)
    if creditor.phone:
        letterhead.append(f"{t['phone']} {_phone(creditor.phone, language)}")
    if creditor.email:
        letterhead.append(f"{t['email']} {creditor.email}")
    if creditor.website:
        letterhead.append(re.sub(r"^https?://|/$", "", creditor.website))
    footer = [
        f"{t['kvk']} {creditor.kvk}" if creditor.kvk else "",
        f"{t['vat']} {creditor.vat}" if creditor.vat else "",
        f"{t['iban']} {_iban(creditor.iban)}" if creditor.iban else "",
        f"BIC {creditor.bic}" if creditor.bic else "",
    ]
    return Sender(
        name=creditor.name,
        letterhead=letterhead,
        return_address=", ".join([creditor.name, *lines]),
        footer=[part for part in footer if part],
    )


def _iban(iban: str) -> str:
    """``NL91 ABNA 0417 1643 00``: the paper format, in groups of four."""
    compact = "".join(iban.split()).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _phone(number: str, language: Language) -> str:
    """``030 123 4567`` for Dutch readers, ``+31 30 123 4567`` for others."""
    try:
        parsed = phonenumbers.parse(number, "NL")
    except phonenumbers.NumberParseException:
        return number
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if language is Language.NL
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return str(phonenumbers.format_number(parsed, style))


# -- the font -------------------------------------------------------------------------------


@cache
def _font_paths() -> dict[str, Path]:
    with ExitStack() as stack:
        found = {
            style: stack.enter_context(
                resources.as_file(resources.files("debsync") / "data" / "fonts" / name)
            )
            for style, name in FONT_FILES.items()
        }
        # The package is installed as files (hatch wheels are never zipped), so the paths
        # stay valid after the stack closes.
        stack.pop_all()
    return found


@cache
def _printable() -> frozenset[int]:
    """Code points every style of the letter font can draw."""
    probe = FPDF()
    try:
        for style, path in _font_paths().items():
            probe.add_font(FONT, style, path)
        maps = [frozenset(font.cmap) for font in probe.fonts.values() if isinstance(font, TTFFont)]
    finally:
        close_fonts(probe)
    return frozenset.intersection(*maps)


def close_fonts(pdf: FPDF) -> None:
    """fpdf2 reads font files lazily and leaves them open: close them with the document."""
    for font in pdf.fonts.values():
        if isinstance(font, TTFFont):
            font.ttfont.close()


def _texts(value: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _texts(getattr(value, name), name if where == "letter" else where)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item, where)


def check_printable(content: LetterContent) -> None:
    """A character the font lacks would print as nothing, in an address or a legal text.

    :raises RenderError: naming the debtor id, the code point and the part of the letter.
    """
    printable = _printable()
    for where, text in _texts(content, "letter"):
        for char in text:
            if char not in "\n\t" and ord(char) not in printable:
                raise RenderError(
                    f"letter to debtor {content.recipient.debtor_id}: the letter font cannot "
                    f"print U+{ord(char):04X} (in the {where.replace('_', ' ')})"
                )


# -- layout: LetterContent -> PDF ---------------------------------------------------------


def build_pdf(payload: Payload) -> bytes:
    """The letter as an A4 PDF: a pure function of the payload, byte for byte.

    :raises pydantic.ValidationError: ``payload`` is not a :class:`LetterContent`.
    :raises RenderError: text the font lacks, or an address too long for the window.
    """
    content = LetterContent.model_validate(payload)
    check_printable(content)
    pdf = _LetterPDF(content)
    try:
        pdf.first_page()
        pdf.body()
        return bytes(pdf.output())
    finally:
        close_fonts(pdf)


class _LetterPDF(FPDF):
    """One letter: first page with letterhead and window, a running header from page 2, and
    a footer with the company's registration and page numbers on every page."""

    def __init__(self, content: LetterContent) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.content = content
        for style, path in _font_paths().items():
            self.add_font(FONT, style, path)
        self.set_margins(PAGE_MARGIN_LEFT_MM, CONTINUATION_TOP_MM, PAGE_MARGIN_RIGHT_MM)
        self.set_auto_page_break(True, margin=BOTTOM_MARGIN_MM)
        self.set_creation_date(datetime.combine(content.date, time(0), tzinfo=AMSTERDAM))
        self.set_creator("debsync")
        self.set_author(content.sender.name)
        self.set_title(content.subject)
        self.set_lang(content.language.value)
        self.set_text_color(0)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(FONT, size=SMALL_PT)
        self.set_text_color(GREY)
        self.set_xy(PAGE_MARGIN_LEFT_MM, 12)
        labels = self.content.labels
        self.cell(
            text=f"{self.content.sender.name} · {labels.our_reference} {self.content.reference}"
        )
        self.set_text_color(0)
        self.set_y(CONTINUATION_TOP_MM)

    def footer(self) -> None:
        self.set_font(FONT, size=7.5)
        self.set_text_color(GREY)
        self.set_draw_color(GREY)
        self.set_line_width(0.2)
        right = 210.0 - PAGE_MARGIN_RIGHT_MM
        self.line(PAGE_MARGIN_LEFT_MM, FOOTER_TOP_MM - 2, right, FOOTER_TOP_MM - 2)
        labels = self.content.labels
        page = labels.page.format(page=self.page_no(), pages=self.str_alias_nb_pages)
        page_width = 30.0
        self.set_xy(PAGE_MARGIN_LEFT_MM, FOOTER_TOP_MM)
        self.multi_cell(
            w=BODY_WIDTH_MM - page_width,
            h=3.5,
            text=" · ".join(part.replace(" ", NBSP) for part in self.content.sender.footer),
            align="L",
            new_x=XPos.RIGHT,
            new_y=YPos.TOP,
        )
        self.cell(w=page_width, h=3.5, text=page, align="R")
        self.set_text_color(0)

    def first_page(self) -> None:
        self.add_page()
        content = self.content
        # Letterhead: the name across the top, the contact details right of the window.
        self.set_xy(PAGE_MARGIN_LEFT_MM, LETTERHEAD_TOP_MM)
        self.set_font(FONT, "B", 12)
        self.multi_cell(
            w=0, h=5.5, text=content.sender.name, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.set_font(FONT, size=SMALL_PT)
        width = 210.0 - PAGE_MARGIN_RIGHT_MM - LETTERHEAD_LEFT_MM
        for line in content.sender.letterhead:
            self.set_x(LETTERHEAD_LEFT_MM)
            self.multi_cell(
                w=width, h=3.8, text=line, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
        self._window()
        # Date, reference, subject.
        self.set_y(META_TOP_MM)
        labels = content.labels
        for label, value, style in (
            (labels.date, content.date_text, ""),
            (labels.our_reference, content.reference, ""),
            (labels.subject, content.subject, "B"),
        ):
            self.set_font(FONT, size=SMALL_PT)
            self.set_text_color(GREY)
            self.cell(w=30, h=LINE_MM, text=label)
            self.set_text_color(0)
            self.set_font(FONT, style, TEXT_PT)
            self.multi_cell(
                w=BODY_WIDTH_MM - 30,
                h=LINE_MM,
                text=value,
                align="L",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
        self.ln(LINE_MM)

    def _window(self) -> None:
        """Return address and recipient inside the window, shrunk (and at the last resort
        wrapped) to fit it."""
        left = PAGE_MARGIN_LEFT_MM
        width = WINDOW_LEFT_MM + WINDOW_WIDTH_MM - WINDOW_MARGIN_MM - left
        bottom = WINDOW_TOP_MM + WINDOW_HEIGHT_MM - WINDOW_MARGIN_MM
        for size in RETURN_FONT_SIZES:  # one line if it fits, else two at the smallest size
            self.set_font(FONT, size=size)
            returned = self._wrap(self.content.sender.return_address, width)
            if len(returned) == 1:
                break
        if len(returned) > RETURN_MAX_LINES:
            raise RenderError("the [creditor] return address is too long for the window")
        self.set_xy(left, RETURN_LINE_TOP_MM)
        for line in returned:
            self.cell(w=width, h=2.6, text=line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        fitted = self._fit_address(width, bottom - ADDRESS_TOP_MM)
        if fitted is None:
            raise RenderError(
                f"letter to debtor {self.content.recipient.debtor_id}: the address does not "
                "fit the envelope window"
            )
        size, lines = fitted
        self.set_font(FONT, size=size)
        self.set_xy(left, ADDRESS_TOP_MM)
        for line in lines:
            self.cell(w=width, h=_line_mm(size), text=line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _fit_address(self, width: float, height: float) -> tuple[float, list[str]] | None:
        """The largest size at which every line fits unbroken, else the smallest size with
        long lines wrapped, if the result stays within the window and six lines."""
        window = self.content.recipient.window
        for size in ADDRESS_FONT_SIZES:
            self.set_font(FONT, size=size)
            wrapped = [part for line in window for part in self._wrap(line, width)]
            room = min(ADDRESS_MAX_LINES, int(height / _line_mm(size)))
            if len(wrapped) <= room and (
                len(wrapped) == len(window) or size == ADDRESS_FONT_SIZES[-1]
            ):
                return size, wrapped
        return None

    def _wrap(self, text: str, width: float) -> list[str]:
        """``text`` broken into lines of at most ``width`` in the current font."""
        lines = self.multi_cell(w=width, text=text, dry_run=True, output=MethodReturnValue.LINES)
        return cast(list[str], lines)

    def body(self) -> None:
        content = self.content
        self.set_font(FONT, size=TEXT_PT)
        self._paragraphs([content.salutation, *content.opening])
        self._table()
        self._paragraphs([*content.payment, *content.closing])
        if self.will_page_break(LINE_MM * 4):
            self.add_page()
        self.set_font(FONT, size=TEXT_PT)
        self.multi_cell(
            w=0, h=LINE_MM, text=content.regards, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.ln(LINE_MM * 2)
        self.multi_cell(
            w=0, h=LINE_MM, text=content.signature, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def _paragraphs(self, texts: Sequence[str]) -> None:
        self.set_font(FONT, size=TEXT_PT)
        for text in texts:
            self.multi_cell(
                w=0, h=LINE_MM, text=text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
            self.ln(LINE_MM / 2)

    def _table(self) -> None:
        content = self.content
        self.set_font(FONT, size=9.5)
        self.set_draw_color(GREY)
        self.set_line_width(0.2)
        with self.table(
            width=BODY_WIDTH_MM,
            col_widths=TABLE_COLUMNS_MM,
            align="LEFT",
            text_align=("LEFT", "LEFT", "LEFT", "RIGHT"),
            borders_layout="SINGLE_TOP_LINE",
            headings_style=FontFace(emphasis="BOLD"),
            line_height=LINE_MM,
        ) as table:
            table.row(content.labels.columns)
            for row in content.invoices:
                table.row([row.number, row.issue_date, row.due_date, row.open])
        amount_width = TABLE_COLUMNS_MM[-1]
        for i, total in enumerate(content.totals):
            self.set_font(FONT, "B" if total.grand else "", 9.5)
            border: Literal[0] | str = "T" if i == 0 or total.grand else 0
            self.cell(
                w=BODY_WIDTH_MM - amount_width,
                h=LINE_MM + 0.5,
                text=total.label,
                align="R",
                border=border,
            )
            self.cell(
                w=amount_width,
                h=LINE_MM + 0.5,
                text=total.amount,
                align="R",
                border=border,
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
        self.ln(LINE_MM)


def _line_mm(size_pt: float) -> float:
    """Line height for a font size: 1.2 times the size, in millimetres."""
    return size_pt * 1.2 * 25.4 / 72


# -- plain text, for previews ---------------------------------------------------------------


def letter_text(content: LetterContent) -> str:
    """The letter as plain text, in reading order (``debsync preview``)."""
    labels = content.labels
    rows = [labels.columns] + [
        [row.number, row.issue_date, row.due_date, row.open] for row in content.invoices
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    table = [
        "  ".join([*(row[i].ljust(widths[i]) for i in range(3)), row[3].rjust(widths[3])])
        for row in rows
    ]
    table += [f"{total.label}: {total.amount}" for total in content.totals]
    parts = [
        content.sender.return_address,
        "\n".join(content.recipient.window),
        f"{labels.date}: {content.date_text}\n{labels.our_reference}: {content.reference}\n"
        f"{labels.subject}: {content.subject}",
        content.salutation,
        *content.opening,
        "\n".join(table),
        *content.payment,
        *content.closing,
        f"{content.regards}\n\n{content.signature}",
        " · ".join(content.sender.footer),
    ]
    return "\n\n".join(parts) + "\n"


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(PrintLetterAction)
