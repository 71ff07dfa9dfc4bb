"""The letter's layout: :class:`LetterContent` as an A4 PDF for a left-window envelope.

:func:`build_pdf` is a pure function of the payload, with a fixed creation date and no random
ids, so the same payload always gives the same bytes and the SHA-256 in the receipt proves
what was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from typing import Literal, cast

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from fpdf.fonts import FontFace

from debsync.actions.base import Payload, RenderError
from debsync.actions.letter.content import ADDRESS_MAX_LINES, LetterContent, check_printable
from debsync.actions.letter.fonts import FONT, add_fonts, close_fonts
from debsync.clock import AMSTERDAM

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

TEXT_PT = 10.0
LINE_MM = 5.0
SMALL_PT = 8.0
TABLE_COLUMNS_MM = (55.0, 35.0, 35.0, 40.0)
GREY = 110
NBSP = "\u00a0"


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
        add_fonts(self)
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
