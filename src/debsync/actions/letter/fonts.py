"""The letter font: DejaVu Sans, embedded, because the PDF core fonts lack € and most names.

fpdf2 embeds only the glyphs a letter uses. Whether the font can draw a text is checked before
a letter is rendered (:func:`printable_code_points`), so no letter prints with a gap.
"""

from __future__ import annotations

from contextlib import ExitStack
from functools import cache
from importlib import resources
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import TTFFont

FONT = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
"""DejaVu Sans 2.37 (Bitstream Vera licence, data/fonts/LICENSE): the PDF core fonts are
Latin-1 only and lack €; DejaVu covers Latin, Greek and Cyrillic, so debtors' names print."""


@cache
def font_paths() -> dict[str, Path]:
    """The font file of each style (``""`` regular, ``"B"`` bold), by fpdf2 style name."""
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


def add_fonts(pdf: FPDF) -> None:
    """Make every style of the letter font available in ``pdf`` as :data:`FONT`."""
    for style, path in font_paths().items():
        pdf.add_font(FONT, style, path)


@cache
def printable_code_points() -> frozenset[int]:
    """Code points every style of the letter font can draw."""
    probe = FPDF()
    try:
        add_fonts(probe)
        maps = [frozenset(font.cmap) for font in probe.fonts.values() if isinstance(font, TTFFont)]
    finally:
        close_fonts(probe)
    return frozenset.intersection(*maps)


def close_fonts(pdf: FPDF) -> None:
    """fpdf2 reads font files lazily and leaves them open: close them with the document."""
    for font in pdf.fonts.values():
        if isinstance(font, TTFFont):
            font.ttfont.close()
