"""The Moneybird mapping's dates and amounts in the model's own types give exactly the record
(or the reject) the validator gives for the strings Moneybird sent, and a common sales invoice
takes the record builder's fast path (``model.plain_invoice``)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debsync.connectors.base import RecordBuilder
from debsync.connectors.moneybird.mapping import invoice_data
from debsync.model import Invoice, plain_invoice

from records import assert_same


def sales_invoice(**fields: Any) -> dict[str, Any]:
    """A sales invoice as Moneybird's API returns it (the fields the mapping reads)."""
    return {
        "id": "446241800000000001",
        "invoice_id": "2026-0001",
        "contact_id": "446241800000000000",
        "state": "open",
        "currency": "EUR",
        "invoice_date": "2026-06-01",
        "due_date": "2026-07-01",
        "total_price_incl_tax": "121.00",
        "total_unpaid": "60.50",
        "payment_reference": "RF0000000001",
        "payment_url": "https://moneybird.com/pay/abc",
        **fields,
    }


def as_sent(data: dict[str, Any]) -> dict[str, Any]:
    """The mapping with its dates and amounts as the strings Moneybird sent."""
    money = {k: {**data[k], "amount": str(data[k]["amount"])} for k in ("total", "open_amount")}
    dates = {k: str(data[k]) for k in ("issue_date", "due_date")}
    return {**data, **money, **dates}


def check(raw: dict[str, Any], *, reminded: bool = False) -> Invoice | None:
    """What the builder makes of the mapping, checked against what it makes of the strings;
    the invoice when the model's fast path took it."""
    data = invoice_data(raw, reminded_by_source=reminded)
    typed, sent = RecordBuilder(), RecordBuilder()
    typed.invoice(data, ref="sales invoice")
    sent.invoice(as_sent(data), ref="sales invoice")
    assert typed.rejects == sent.rejects
    assert len(typed.invoices) == len(sent.invoices)
    for fast, full in zip(typed.invoices, sent.invoices, strict=True):
        assert_same(fast, full)  # the strings never take the fast path: the validator's
    return plain_invoice(data)


def test_common_invoice_takes_the_fast_path() -> None:
    assert check(sales_invoice()) is not None
    assert check(sales_invoice(state="pending_payment", payment_url=None), reminded=True)
    assert check(sales_invoice(currency="JPY", total_price_incl_tax="1200", total_unpaid="1200"))
    assert check(sales_invoice(total_price_incl_tax="-50.00", total_unpaid="-50"))
    assert check(sales_invoice(total_price_incl_tax="1.500", total_unpaid="0"))
    # What the mapping already turns into text, stripped, as the model would
    assert check(sales_invoice(id=446241800000000001, payment_reference="RF 0001\u00a0"))


@pytest.mark.parametrize(
    "fields",
    [
        {"invoice_id": "2026\t0001"},  # cleaned by the model
        {"payment_reference": "RF\u202e0001"},  # a bidi control, removed and reported
        {"currency": "eur"},  # normalised by the model
        {"currency": "XYZ"},
        {"total_unpaid": "12.345"},  # more decimals than EUR has
        {"total_price_incl_tax": "1e3", "total_unpaid": "1000"},
        {"total_price_incl_tax": "1000000000.00", "total_unpaid": "1.00"},
        {"total_unpaid": "200.00"},  # more open than the total
        {"due_date": "2026-05-01"},  # due before issued
        {"invoice_date": "2026-02-30"},
        {"invoice_date": "20260601"},
        {"payment_url": "javascript:alert(1)"},  # the builder drops the link and reports it
        {"invoice_id": ""},
        {"contact_id": "x" * 256},
    ],
)
def test_uncommon_invoice_is_left_to_the_validator(fields: dict[str, Any]) -> None:
    assert check(sales_invoice(**fields)) is None


_odd_text = st.text(
    st.sampled_from(["a", "Z", "0", "-", " ", "é", "\t", "\u200e", "\u00a0", "/"]), max_size=6
)
_clean_text = st.from_regex(r"[A-Za-z0-9-]{1,12}", fullmatch=True)
_text = st.one_of(_clean_text, _clean_text, _clean_text, _clean_text, _odd_text)
_odd_amount = st.one_of(
    st.decimals(min_value=-1000, max_value=1000, places=3).map(str),
    st.sampled_from(["0", "-0.00", "12", " 12.00", "1_000", "+5", "5.", ".5", "1E2", "NaN", "x"]),
    st.decimals(min_value=-(10**10), max_value=10**10, places=2).map(str),
)
_odd_day = st.sampled_from(["2026-13-01", "2026-6-1", "", "2026-06-01T00:00", "20260601"])


@st.composite
def _dates(draw: st.DrawFn) -> tuple[str, str]:
    issued = draw(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)))
    due = issued + timedelta(days=draw(st.integers(-3, 90)))
    odd = draw(st.integers(0, 9)) == 0  # now and then a date the validator must judge
    return (draw(_odd_day), str(due)) if odd else (str(issued), str(due))


@st.composite
def _amounts(draw: st.DrawFn) -> tuple[str, str]:
    total = draw(st.decimals(min_value=-(10**9), max_value=10**9, places=2))
    unpaid = total * draw(st.sampled_from([Decimal(1), Decimal(0), Decimal("0.5"), Decimal(2)]))
    if draw(st.integers(0, 9)) == 0:  # now and then an amount the validator must judge
        return draw(_odd_amount), draw(_odd_amount)
    return str(total), draw(st.sampled_from([f"{unpaid:.2f}", str(unpaid)]))


@settings(max_examples=400, deadline=None)
@given(
    ident=_text,
    number=_text,
    contact=_text,
    reference=st.one_of(st.none(), _text),
    currency=st.sampled_from([None, "", "EUR", "EUR", "USD", "JPY", "KWD", "eur", " EUR", "XX1"]),
    dates=_dates(),
    amounts=_amounts(),
    url=st.sampled_from([None, "", "https://moneybird.com/p/1", "http://x.nl", "https://"]),
    state=st.sampled_from(["open", "pending_payment", "late"]),
    reminded=st.booleans(),
)
def test_fast_path_equals_the_validator(
    ident: str,
    number: str,
    contact: str,
    reference: str | None,
    currency: str | None,
    dates: tuple[str, str],
    amounts: tuple[str, str],
    url: str | None,
    state: str,
    reminded: bool,
) -> None:
    raw = sales_invoice(
        id=ident,
        invoice_id=number,
        contact_id=contact,
        payment_reference=reference,
        currency=currency,
        invoice_date=dates[0],
        due_date=dates[1],
        total_price_incl_tax=amounts[0],
        total_unpaid=amounts[1],
        payment_url=url,
        state=state,
    )
    check(raw, reminded=reminded)
