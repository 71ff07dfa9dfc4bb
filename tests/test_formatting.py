"""One voice: amounts, dates, phone numbers and IBANs read the same in the command line, the
dossier, e-mails, SMS and letters, by the reader's language (issue 11, item 9)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

import pytest
from babel.numbers import format_currency
from hypothesis import given, settings
from hypothesis import strategies as st

from debsync import formatting
from debsync.actions.letter.content import letter_text, render_letter
from debsync.model import Language
from debsync.templates import Templates
from debsync.testing import sample_context

NL, EN = Language.NL, Language.EN
NBSP = "\xa0"  # CLDR keeps the euro sign and the amount together with a no-break space


@pytest.mark.parametrize(
    ("amount", "currency", "language", "shown"),
    [
        ("968249.55", "EUR", NL, f"€{NBSP}968.249,55"),
        ("968249.55", "EUR", EN, "€968,249.55"),
        ("0", "EUR", NL, f"€{NBSP}0,00"),
        ("0", "EUR", EN, "€0.00"),
        ("-121", "EUR", NL, f"€{NBSP}-121,00"),
        ("-121", "EUR", EN, "-€121.00"),
        ("999999999999.99", "EUR", NL, f"€{NBSP}999.999.999.999,99"),
        ("999999999999.99", "EUR", EN, "€999,999,999,999.99"),
        ("3615.57", "EUR", NL, f"€{NBSP}3.615,57"),
        ("1234.5", "USD", NL, f"US${NBSP}1.234,50"),
        ("1234.5", "USD", EN, "US$1,234.50"),
        ("1234", "JPY", NL, f"JP¥{NBSP}1.234"),  # no minor unit
        ("1.234", "KWD", EN, "KWD1.234"),  # three decimals
        ("1234.56", "GBP", EN, "£1,234.56"),
    ],
)
def test_money(amount: str, currency: str, language: Language, shown: str) -> None:
    assert formatting.money(Decimal(amount), currency, language) == shown


@settings(max_examples=3000, deadline=None)
@given(
    digits=st.integers(min_value=-(10**16), max_value=10**16),
    exponent=st.integers(min_value=-4, max_value=3),
    negative_zero=st.booleans(),
    language=st.sampled_from(list(Language)),
)
def test_euros_are_written_as_babel_writes_them(
    digits: int, exponent: int, negative_zero: bool, language: Language
) -> None:
    """The euro fast path gives babel's text for every amount it takes (whole cents, any
    sign, -0 too) and leaves the rest (rounding) to babel."""
    amount = Decimal(digits).scaleb(exponent)
    if negative_zero and digits == 0:
        amount = -amount
    shown = format_currency(amount, "EUR", locale=formatting.LOCALES[language])
    assert formatting.money(amount, "EUR", language) == shown


def test_the_operator_reads_dutch_by_default() -> None:
    assert formatting.money(Decimal("968249.55"), "EUR") == f"€{NBSP}968.249,55"
    assert formatting.long_date(date(2026, 12, 6)) == "6 december 2026"
    assert formatting.phone("+31301234567") == "030 123 4567"


@pytest.mark.parametrize(
    ("day", "language", "long", "short"),
    [
        (date(2026, 12, 6), NL, "6 december 2026", "06-12-2026"),
        (date(2026, 12, 6), EN, "6 December 2026", "6 Dec 2026"),
        (date(2026, 3, 1), NL, "1 maart 2026", "01-03-2026"),
        (date(2026, 3, 1), EN, "1 March 2026", "1 Mar 2026"),
        (date(1999, 12, 31), NL, "31 december 1999", "31-12-1999"),
    ],
)
def test_dates(day: date, language: Language, long: str, short: str) -> None:
    assert formatting.long_date(day, language) == long
    assert formatting.short_date(day, language) == short


def test_a_moment_is_the_short_date_and_the_time() -> None:
    assert formatting.moment(datetime(2026, 12, 6, 14, 5, 59)) == "06-12-2026 14:05"


@pytest.mark.parametrize(
    ("number", "dutch", "english"),
    [
        ("+31301234567", "030 123 4567", "+31 30 123 4567"),
        ("0301234567", "030 123 4567", "+31 30 123 4567"),
        ("030-1234567", "030 123 4567", "+31 30 123 4567"),
        ("+31612345678", "06 12345678", "+31 6 12345678"),
        ("+3222123456", "+32 2 212 34 56", "+32 2 212 34 56"),  # a Belgian number: international
        ("+442071838750", "+44 20 7183 8750", "+44 20 7183 8750"),
        ("call me", "call me", "call me"),  # not a number: as given
        ("12345", "12345", "12345"),  # not a valid number: as given
    ],
)
def test_phone_numbers(number: str, dutch: str, english: str) -> None:
    assert formatting.phone(number, NL) == dutch
    assert formatting.phone(number, EN) == english


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("NL91ABNA0417164300", "NL91 ABNA 0417 1643 00"),
        ("nl91 abna 0417 1643 00", "NL91 ABNA 0417 1643 00"),
        ("DE89370400440532013000", "DE89 3704 0044 0532 0130 00"),
        ("BE68539007547034", "BE68 5390 0754 7034"),
        ("NL92ABNA0417164300", "NL92ABNA0417164300"),  # check digits fail: as given
        ("NL91 ABNA", "NL91 ABNA"),  # too short: as given
        ("not an iban", "not an iban"),
    ],
)
def test_ibans(given: str, shown: str) -> None:
    assert formatting.iban(given) == shown


@pytest.mark.parametrize(
    ("value", "language", "shown"),
    [(Decimal("1234.5"), NL, "1.234,5"), (Decimal("1234.5"), EN, "1,234.5"), (0, NL, "0")],
)
def test_numbers(value: Decimal | int, language: Language, shown: str) -> None:
    assert formatting.number(value, language) == shown


@pytest.mark.parametrize("language", [NL, EN])
def test_an_email_and_a_letter_write_the_same_figures(language: Language) -> None:
    """The issue's finding: the e-mail showed ``+31301234567`` and an unspaced IBAN where the
    letter showed ``030 123 4567`` and ``NL91 ABNA 0417 1643 00``."""
    templates = Templates()
    context = sample_context("aanmaning", "letter", language)
    creditor = dataclasses.replace(context.creditor, phone="+31301234567")
    payment = dataclasses.replace(context.payment, iban="NL91ABNA0417164300")
    context = dataclasses.replace(context, creditor=creditor, payment=payment)
    email = templates.layout("email/_layout.txt.j2", context, html=False, opening="", closing="")
    html = templates.layout(
        "email/_layout.html.j2", context, html=True, subject="", opening="", closing=""
    )
    content = render_letter(context, templates)
    letter = "\n".join([letter_text(content), *content.sender.letterhead])
    figures = [
        formatting.phone("+31301234567", language),
        formatting.iban("NL91ABNA0417164300"),
        formatting.money(context.total, context.currency, language),
        formatting.short_date(context.invoices[0].due_date, language),
    ]
    for figure in figures:
        assert figure in email and figure in html and figure in letter, figure
    assert "+31301234567" not in email and "NL91ABNA0417164300" not in email
    sms = templates.blocks("sms", dataclasses.replace(context, channel="sms"), ["text"])["text"]
    assert figures[0] in sms and figures[2] in sms and "+31301234567" not in sms
