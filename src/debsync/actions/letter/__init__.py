"""Letters: a dunning step as an A4 PDF for a left-window envelope.

The veertiendagenbrief's legal copy goes by post, and any other step may too. ``render``
builds the whole letter as structured, JSON-serialisable text (:mod:`~.content`: the step's
wording from ``letter/<template>.<language>.j2``, the address lines for the window, the
invoice table with amounts already formatted for the debtor's language, the payment
instructions and the footer). :func:`build_pdf` (:mod:`~.pdf`) lays that out in the letter
font (:mod:`~.fonts`). :class:`LetterAction` (:mod:`~.action`) renders and builds; a transport
delivers the PDF: the built-in ``letter`` type writes it into a print folder
(:mod:`~.print_folder`), a hybrid-mail provider is another subclass (docs/actions/letter.md).
"""

from __future__ import annotations

from debsync import hookimpl
from debsync.actions.letter.action import LetterAction
from debsync.actions.letter.content import LetterContent, letter_text, render_letter
from debsync.actions.letter.fonts import FONT, close_fonts, font_paths
from debsync.actions.letter.pdf import (
    WINDOW_HEIGHT_MM,
    WINDOW_LEFT_MM,
    WINDOW_TOP_MM,
    WINDOW_WIDTH_MM,
    build_pdf,
)
from debsync.actions.letter.print_folder import PrintLetterAction, PrintLetterSettings
from debsync.hookspecs import RegisterAction

__all__ = [
    "FONT",
    "WINDOW_HEIGHT_MM",
    "WINDOW_LEFT_MM",
    "WINDOW_TOP_MM",
    "WINDOW_WIDTH_MM",
    "LetterAction",
    "LetterContent",
    "PrintLetterAction",
    "PrintLetterSettings",
    "build_pdf",
    "close_fonts",
    "debsync_register_actions",
    "font_paths",
    "letter_text",
    "render_letter",
]


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(PrintLetterAction)
