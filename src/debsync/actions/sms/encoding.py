"""How a text travels as SMS (3GPP TS 23.038): GSM-7 or UCS-2, and how many parts it takes.

Pure and provider-independent, so ``render`` can refuse a text that is too long before any
provider is asked, and the figure it gives is never lower than the bill.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM-7 default alphabet, one septet each (the escape code itself left out)."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""The extension table: each character costs an escape plus itself, two septets."""

Encoding = Literal["gsm7", "ucs2"]
SINGLE_PART: Mapping[Encoding, int] = {"gsm7": 160, "ucs2": 70}
"""Capacity of an unsplit message: septets (GSM-7) or UTF-16 code units (UCS-2)."""
PER_PART: Mapping[Encoding, int] = {"gsm7": 153, "ucs2": 67}
"""Capacity of each part of a split message, after the 6-byte concatenation header."""
UNITS: Mapping[Encoding, str] = {"gsm7": "septets", "ucs2": "UTF-16 code units"}


@dataclass(frozen=True)
class SmsLength:
    """How a text travels: its encoding, its size in that encoding's units, its parts."""

    encoding: Encoding
    units: int
    segments: int

    def __str__(self) -> str:
        plural = "" if self.segments == 1 else "s"
        return (
            f"{'GSM-7' if self.encoding == 'gsm7' else 'UCS-2'}, "
            f"{self.units} {UNITS[self.encoding]}, {self.segments} segment{plural}"
        )


def normalise_text(text: str) -> str:
    """Every space separator (U+00A0 and U+202F, which babel puts inside ``€ 605,00``,
    thin and figure spaces) becomes a plain space, line ends become LF, and the ends are
    trimmed. Only spaces change: one of them alone would switch the whole message to UCS-2,
    whereas changing a letter would change what the creditor wrote."""
    text = text.replace("\r\n", "\n")
    return "".join(" " if unicodedata.category(c) == "Zs" else c for c in text).strip()


def is_gsm7(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def measure(text: str) -> SmsLength:
    """Encoding, size and number of parts of ``text`` as a handset receives it.

    Any character outside GSM-7 switches the whole message to UCS-2. Parts are filled in
    order and a character never straddles two parts: an extension character's escape pair
    and a UTF-16 surrogate pair stay together, so the count is never lower than the bill.
    """
    encoding: Encoding = "gsm7" if all(is_gsm7(c) for c in text) else "ucs2"
    if encoding == "gsm7":
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
    else:
        sizes = [len(c.encode("utf-16-le")) // 2 for c in text]
    units = sum(sizes)
    if units <= SINGLE_PART[encoding]:
        return SmsLength(encoding, units, 1)
    segments, used = 1, 0
    for size in sizes:
        if used + size > PER_PART[encoding]:
            segments, used = segments + 1, 0
        used += size
    return SmsLength(encoding, units, segments)
