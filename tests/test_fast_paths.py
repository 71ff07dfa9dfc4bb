"""The contact fast paths give exactly what the full validators give: the same normalised
value, or the same rejection (then the fast path declines and the full validator decides)."""

from __future__ import annotations

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from debsync.model import _dutch_phone, _plain_email, normalise_email, normalise_phone


def _full_email(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def _full_phone(value: str) -> str | None:
    try:
        parsed = phonenumbers.parse(value, "NL")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_LOCAL_CHARS = "abcXYZ09._+-'\"\\ !#é"
_DOMAIN_CHARS = "abcXYZ09.-é"
_labels = st.text(alphabet=_DOMAIN_CHARS, min_size=0, max_size=12)
_tlds = st.sampled_from(
    ["nl", "NL", "com", "test", "local", "invalid", "onion", "arpa", "localhost", "d3", "x", ""]
)
_emails = st.one_of(
    st.builds(
        lambda local, labels, tld, dot: f"{local}@{'.'.join(labels)}.{tld}{dot}",
        st.one_of(
            st.text(alphabet=_LOCAL_CHARS, min_size=0, max_size=70),
            st.sampled_from(["Info", "SALES", "support", "Postmaster", "j.jansen", '"a b"']),
        ),
        st.lists(_labels, min_size=0, max_size=3),
        _tlds,
        st.sampled_from(["", "."]),
    ),
    st.text(max_size=40),
)


@settings(max_examples=1500, deadline=None)
@given(_emails)
@example("debiteur1@example.nl")
@example("J.Jansen@Bedrijf.NL")
@example("INFO@bedrijf.nl")
@example('"quoted local"@bedrijf.nl')
@example("jan@bedrijf.nl.")
@example("jan@münchen.de")
@example("jan@xn--mnchen-3ya.de")
@example("jan@ab--cd.nl")
@example("jan..jansen@bedrijf.nl")
@example("jan@bedrijf.test")
@example("jan@-bedrijf.nl")
@example("jan@bedrijf.123")
@example("a" * 65 + "@bedrijf.nl")
@example("a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 58 + ".nl")
@example("a@" + "b" * 64 + ".nl")
def test_email_fast_path_agrees_with_email_validator(value: str) -> None:
    fast, full = _plain_email(value), _full_email(value)
    if fast is not None:
        assert fast == full
    assert _email_or_none(value) == full


def _email_or_none(value: str) -> str | None:
    try:
        return normalise_email.__wrapped__(value)
    except ValueError:
        return None


_separator = st.sampled_from(["", " ", "-", "  ", " - "])
_prefixes = st.sampled_from(
    ["0", "+31", "0031", "+31(0)", "+31 (0)", "0031 (0)", "+32", "0032", "+", "00", "(0)", ""]
)
_national = st.one_of(
    st.text(alphabet="0123456789", min_size=0, max_size=12),
    st.builds(
        lambda lead, rest: lead + rest,
        st.sampled_from(["6", "61", "66", "69", "20", "10", "800", "900", "906", "85", "91", "97"]),
        st.text(alphabet="0123456789", min_size=4, max_size=9),
    ),
)


def _spaced(digits: str, separators: list[str]) -> str:
    out = []
    for i, digit in enumerate(digits):
        out.append(digit)
        if i < len(separators):
            out.append(separators[i])
    return "".join(out)


_phones = st.one_of(
    st.builds(
        lambda prefix, sep, national, seps: f"{prefix}{sep}{_spaced(national, seps)}",
        _prefixes,
        _separator,
        _national,
        st.lists(_separator, max_size=12),
    ),
    st.text(alphabet="0123456789 -+()x.", max_size=20),
)


@settings(max_examples=2000, deadline=None)
@given(_phones)
@example("06-12345678")
@example("06 1234 5678")
@example("+31 6 12345678")
@example("0031612345678")
@example("+31 (0)6 1234 5678")
@example("+31 (0)20 123 4567")
@example("020-1234567")
@example("0800-1234")
@example("0900-1234567")
@example("0661234567")
@example("+32 470 12 34 56")
@example("+44 20 7946 0958")
@example("+310612345678")
@example("06-1234567")
@example("+ 31 6 12345678")
def test_phone_fast_path_agrees_with_phonenumbers(value: str) -> None:
    fast, full = _dutch_phone(value), _full_phone(value)
    if fast is not None:
        assert fast == full
    assert _phone_or_none(value) == full


def _phone_or_none(value: str) -> str | None:
    try:
        return normalise_phone.__wrapped__(value)
    except ValueError:
        return None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("06-12345678", "+31612345678"), ("+31 (0)20 123 4567", "+31201234567")],
)
def test_common_dutch_numbers_take_the_fast_path(value: str, expected: str) -> None:
    assert _dutch_phone(value) == expected == normalise_phone(value)


def test_plain_addresses_take_the_fast_path() -> None:
    assert _plain_email("J.Jansen@Bedrijf.NL") == "J.Jansen@bedrijf.nl"
    assert normalise_email("debiteur1@example.nl") == "debiteur1@example.nl"
    assert _plain_email("jan@münchen.de") is None  # IDN: the full validator
