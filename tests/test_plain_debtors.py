"""The debtor and address fast paths (plain_debtors) build exactly what the validator builds,
or decline: then the validator decides (and explains)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from debsync.model import Address, Debtor, DebtorKind, Language
from debsync.plain_debtors import plain_address, plain_debtor, stored_address

from records import assert_same

_texts = st.one_of(
    st.sampled_from(["D001", "Jansen B.V.", " D001", "D001 ", "", "x" * 255, "x" * 256, "a\tb"]),
    st.sampled_from(["Café Ons Dorp", "a\u200eb", "x" * 1001, "\u00a0x"]),
    st.text(max_size=12),
)
_emails = st.one_of(
    st.sampled_from(
        [
            "debiteur1@example.nl",
            "Debiteur.1@Example.NL",
            " a@example.nl",
            "a@example.nl ",
            "a@b",
            "a..b@example.nl",
            "postmaster@example.nl",
            "jan@xn--caf-dma.nl",
            "jan@café.nl",
            '"jan jansen"@example.nl',
            "a@example.local",
            "",
            "x" * 65 + "@example.nl",
        ]
    ),
    st.text(max_size=12),
    st.just(12),
)
_phones = st.one_of(
    st.sampled_from(
        [
            "06-12345678",
            "+31 6 12345678",
            "0031 (0)20 1234567",
            "020-1234567",
            "0612345678 ",
            "12345",
            "+32 470 12 34 56",
            "0800-1234",
            "06 1234 5678 9",
            "abc",
            "",
        ]
    ),
    st.text(alphabet="0123456789 +-()", max_size=14),
    st.just(612345678),
)
_kvks = st.sampled_from([None, "", "12345678", "1234 5678", "1234.5678", "1234567", "١٢٣٤٥٦٧٨"])
_vats = st.sampled_from([None, "", "NL123456789B01", "nl 1234.56789.b01", "123", 0])
_ibans = st.sampled_from(
    [None, "", "NL91ABNA0417164300", "NL91 ABNA 0417 1643 00", "nl91abna0417164300", "XX", 5]
)
_countries = st.sampled_from(["NL", "nl", "BE", "DE", "N", "NLD", "1L", " N", "ÑL"])
_postcodes = st.one_of(
    st.sampled_from(["1234 AB", "1234ab", "1234  AB", "1234-AB", "B-1000", "", " 1234 AB"]),
    st.sampled_from(["1234 AB ", "x" * 33, "1234\tAB", "١٢٣٤ AB"]),
    st.from_regex(r"[0-9]{4} ?[A-Za-z]{2}", fullmatch=True),
)
_lines = st.lists(_texts, max_size=2)


def _address(lines: list[str], postcode: str, city: str, country: str = "NL") -> Address | None:
    try:
        return Address(lines=tuple(lines), postcode=postcode, city=city, country=country)
    except ValidationError:
        return None


@st.composite
def _debtors(draw: st.DrawFn) -> dict[str, Any]:
    """A plain debtor as the CSV reader hands it over, with up to two fields made hostile."""
    number = draw(st.integers(0, 999_999))
    data: dict[str, Any] = {
        "external_id": f"D{number:06d}",
        "name": draw(st.from_regex(r"[A-Za-z][A-Za-z0-9 .-]{0,30}[A-Za-z.]", fullmatch=True)),
        "kind": draw(st.sampled_from(DebtorKind)),
        "emails": [f"debiteur{number}@example.nl"] * draw(st.integers(0, 2)),
        "phones": [f"06-{10000000 + number}"] * draw(st.integers(0, 1)),
        "language": draw(st.sampled_from(Language)),
        "address": draw(st.one_of(st.none(), st.builds(_address, _lines, _postcodes, _texts))),
        "kvk": draw(st.sampled_from([None, "", f"{10000000 + number}"])),
        "vat": draw(st.sampled_from([None, ""])),
        "iban": draw(st.sampled_from([None, "", "NL91ABNA0417164300"])),
    }
    for key in draw(st.lists(st.sampled_from(sorted(data)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del data[key]
    hostile: dict[str, st.SearchStrategy[Any]] = {
        "external_id": _texts,
        "name": _texts,
        "kind": st.sampled_from(["business", "x", None]),
        "language": st.sampled_from(["en", "fr", None]),
        "emails": st.one_of(st.lists(_emails, max_size=3), st.tuples(_emails), st.just("a@b.nl")),
        "phones": st.one_of(st.lists(_phones, max_size=3), st.tuples(_phones)),
        "address": st.one_of(
            st.builds(_address, _lines, _postcodes, _texts, _countries),
            st.just({"city": "Utrecht"}),
        ),
        "kvk": _kvks,
        "vat": _vats,
        "iban": _ibans,
        "surplus": st.just(1),
    }
    for key in draw(st.lists(st.sampled_from(sorted(hostile)), max_size=2)):
        data[key] = draw(hostile[key])
    return data


_PLAIN: dict[str, Any] = {
    "external_id": "D000001",
    "name": "Handelsonderneming 1 B.V.",
    "kind": DebtorKind.BUSINESS,
    "emails": ["Debiteur1@Example.NL"],
    "phones": ["06-10000001"],
    "language": Language.NL,
    "address": Address(lines=("Kerkstraat 2",), postcode="1001ab", city="Zwolle", country="NL"),
    "kvk": "10000001",
    "vat": None,
    "iban": "NL91 ABNA 0417 1643 00",
}


def _same(fast: Any, full: Any) -> None:
    assert_same(fast, full)
    assert repr(fast) == repr(full)
    assert hash(fast) == hash(full)


@settings(max_examples=3000, deadline=None)
@given(_debtors())
@example(_PLAIN)
@example({**_PLAIN, "address": None, "kvk": "", "iban": "", "emails": [], "phones": []})
def test_plain_debtor_is_the_validated_debtor(data: dict[str, Any]) -> None:
    fast = plain_debtor(data)
    try:
        full = Debtor.model_validate(data)
    except ValidationError:
        assert fast is None
        return
    if fast is not None:
        _same(fast, full)


@settings(max_examples=3000, deadline=None)
@given(_lines, _postcodes, _texts, _countries)
@example(["Kerkstraat 2"], "1001ab", "Zwolle", "nl")
@example([], "", "", "BE")
def test_plain_address_is_the_validated_address(
    lines: list[str], postcode: str, city: str, country: str
) -> None:
    fast = plain_address(lines, postcode, city, country)
    full = _address(lines, postcode, city, country)
    if full is None:
        assert fast is None
    elif fast is not None:
        _same(fast, full)


_documents = st.one_of(
    st.builds(
        lambda a: a.model_dump(mode="json") if a else {"city": "Utrecht"},
        st.builds(_address, _lines, _postcodes, _texts, _countries),
    ),
    st.fixed_dictionaries(
        {"lines": st.lists(_texts, max_size=2), "postcode": _postcodes, "city": _texts},
        optional={"country": _countries, "extra": st.just(1)},
    ),
    st.just({"lines": ("Kerkstraat 2",), "postcode": "1001 AB", "city": "Zwolle", "country": "NL"}),
    st.just({"lines": [3], "postcode": None, "city": "Zwolle", "country": "NL"}),
)


@settings(max_examples=2000, deadline=None)
@given(_documents)
def test_a_stored_address_reads_back_as_validated(document: dict[str, Any]) -> None:
    try:
        full = Address.model_validate(document)
    except ValidationError:
        with pytest.raises(ValidationError):
            stored_address(document)
        return
    _same(stored_address(document), full)


def test_a_plain_debtor_and_address_take_the_fast_path() -> None:
    assert plain_debtor(_PLAIN) == Debtor.model_validate(_PLAIN)
    assert plain_address(["Kerkstraat 2"], "1001ab", "Zwolle", "NL") == Address(
        lines=("Kerkstraat 2",), postcode="1001 AB", city="Zwolle", country="NL"
    )
