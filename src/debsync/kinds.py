"""Inferring a debtor's kind when the books do not say: a legal form in the name, a KvK number
or a VAT number makes the debtor a business.

Consumer law (the WIK's veertiendagenbrief, capped collection costs, art. 6:119 interest)
protects consumers, so only positive evidence makes a debtor a business; without it the kind
stays unknown and the policy's ``unknown_kind`` decides (consumer unless set otherwise). Every
connector whose source has no reliable kind field calls :func:`infer_kind`.
"""

from __future__ import annotations

import re
import unicodedata

from debsync.model import DebtorKind

_BEFORE = r"(?<![\w.\-'])"
_AFTER = r"(?!\.?[\w\-])"
_LETTERS = r"\.?".join  # "b", "v" -> "b\.?v": B.V., BV (not "B. V.": initials)

_FORMS = re.compile(
    _BEFORE
    + "(?:"
    + "|".join(
        (
            _LETTERS("bv") + r"\.?",
            _LETTERS("nv") + r"\.?",
            _LETTERS("vof") + r"\.?",
            _LETTERS("bvba") + r"\.?",
            r"c\.\s?v\.?",  # plain "CV" only at the end (below): "CV-installateur" is a trade
            r"u\.\s?a\.?",  # coöperatie U.A.
            r"stichting",
            r"vereniging",
            r"vve",
            r"co[-]?operatie(?:ve)?",
            r"maatschap",
            r"holdings?",
            r"vennootschap",
            r"gmbh",
            r"ltd",
            r"limited",
            r"llc",
            r"inc",
            r"plc",
            r"sarl",
            r"sprl",
            r"srl",
        )
    )
    + r")"
    + _AFTER
    + r"|"
    + _BEFORE
    + r"(?:cv|ag|kg)\.?\s*$"
)
"""Dutch legal forms (and the common foreign ones) as whole words of a folded name. The
boundaries keep "n.v.t." (not applicable), "Bvlgari" and "CV-monteur" out."""

_KVK = re.compile(r"\d{8}")
_VAT = re.compile(r"[a-z]{2}(?=[0-9a-z+*]*\d)[0-9a-z+*]{2,13}")
_SEPARATORS = re.compile(r"[\s.\-]")


def _fold(text: str) -> str:
    """Case and accents folded, so "Coöperatie" and "COOPERATIE" read the same."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_INITIALS = re.compile(r"[a-z]\.[a-z]\.?")
"""Two dotted letters: "B.V." or "C.V." before a name may be someone's initials."""


def legal_form(name: str) -> str | None:
    """The legal form a name carries ("B.V.", "Stichting"), as written, or ``None``.

    A mistaken business costs a consumer the law's protection, so doubtful cases stay
    unknown: "B.V. de Wit" may be Mr B.V. de Wit (a form in front is taken undotted only:
    "BV De Hoek").
    """
    folded = _fold(name)
    for match in _FORMS.finditer(folded):
        if match.start() == 0 and _INITIALS.fullmatch(match[0].strip()):
            continue
        if len(folded) != len(name):  # a ligature changed the length: no offsets to map
            return match[0].strip()
        return name[match.start() : match.end()].strip()
    return None


def is_kvk_number(text: str) -> bool:
    """A Dutch Chamber of Commerce number: eight digits (spaces and dots allowed)."""
    return _KVK.fullmatch(_SEPARATORS.sub("", text)) is not None


def is_vat_number(text: str) -> bool:
    """An EU VAT identification number: a country prefix and digits (NL123456789B01)."""
    return _VAT.fullmatch(_SEPARATORS.sub("", text.casefold())) is not None


def business_evidence(name: str, kvk: str | None = None, vat: str | None = None) -> str | None:
    """Why a debtor is a business (for the log and the dossier), or ``None`` without evidence.
    A placeholder such as "n.v.t." or "-" in the KvK or VAT column is no evidence."""
    form = legal_form(name)
    if form:
        return f"legal form {form!r} in the name"
    if kvk and is_kvk_number(kvk):
        return "a KvK number"
    if vat and is_vat_number(vat):
        return "a VAT number"
    return None


def infer_kind(name: str, kvk: str | None = None, vat: str | None = None) -> DebtorKind:
    """``BUSINESS`` on evidence (:func:`business_evidence`), else ``UNKNOWN``: a name never
    proves a consumer."""
    if business_evidence(name, kvk, vat):
        return DebtorKind.BUSINESS
    return DebtorKind.UNKNOWN
