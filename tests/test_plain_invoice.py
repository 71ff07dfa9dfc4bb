"""The invoice fast path (model.plain_invoice) builds exactly what the validator builds, or
declines: then the validator decides (and explains)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from debsync.model import Invoice, plain_invoice

_texts = st.one_of(
    st.sampled_from(["2026-0001", "D001", " D001", "D001 ", "", "x" * 255, "x" * 256, "a\tb"]),
    st.text(max_size=12),
)
_amounts = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.sampled_from(
        [Decimal("12.50"), Decimal("12.5"), Decimal("12.505"), Decimal("-0"), Decimal("1E+2")]
    ),
    st.sampled_from(["12.50", 1250, 12.5, None]),
)
_currencies = st.sampled_from(["EUR", "eur", " EUR", "JPY", "KWD", "XXX", "ABC", 978])
_dates = st.one_of(
    st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 1, 1)),
    st.sampled_from([datetime(2026, 1, 1), "2026-01-01", None]),
)


def _money(amount: Any, currency: Any) -> Any:
    return {"amount": amount, "currency": currency}


@st.composite
def _invoices(draw: st.DrawFn) -> dict[str, Any]:
    """A plain invoice of random values, with up to two fields (or amounts) made hostile."""
    issued = draw(st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 1, 1)))
    cents = draw(st.integers(-(10**11), 10**11))
    total = Decimal(cents).scaleb(-2)
    open_ = Decimal(draw(st.integers(0, abs(cents)))).scaleb(-2).copy_sign(total)
    number = draw(st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True))
    data: dict[str, Any] = {
        "external_id": number,
        "number": number,
        "debtor_id": draw(st.from_regex(r"D[0-9]{1,6}", fullmatch=True)),
        "issue_date": issued,
        "due_date": issued + timedelta(days=draw(st.integers(0, 60))),
        "total": _money(total, "EUR"),
        "open_amount": _money(open_, "EUR"),
    }
    optional = {
        "payment_reference": st.one_of(st.none(), _texts),
        "payment_url": st.sampled_from([None, "https://pay.example/1", "javascript:x", " "]),
        "direct_debit": st.sampled_from([False, True, 0, "yes"]),
        "direct_debit_failed": st.booleans(),
        "reminded_by_source": st.booleans(),
        "has_document": st.booleans(),
        "prior_step": st.sampled_from([None, "reminder", "aanmaning", "other"]),
        "prior_step_on": _dates,
        "surplus": st.just(1),
    }
    for key, values in optional.items():
        if draw(st.integers(0, 3)) == 0:
            data[key] = draw(values)
    hostile = {
        "external_id": _texts,
        "debtor_id": _texts,
        "issue_date": _dates,
        "due_date": _dates,
        "total": st.builds(_money, _amounts, _currencies),
        "open_amount": st.builds(_money, _amounts, _currencies),
        "total.amount": _amounts,
        "open_amount.amount": _amounts,
        "currency": _currencies,
    }
    for key in draw(st.lists(st.sampled_from(sorted(hostile)), max_size=2)):
        value = draw(hostile[key])
        if key == "currency":
            data["total"] = _money(data["total"]["amount"], value)
            data["open_amount"] = _money(data["open_amount"]["amount"], value)
        elif key.endswith(".amount"):
            money = key.partition(".")[0]
            data[money] = _money(value, data[money]["currency"])
        else:
            data[key] = value
    return data


_PLAIN = {
    "external_id": "2026-0001",
    "number": "2026-0001",
    "debtor_id": "D001",
    "issue_date": date(2026, 1, 1),
    "due_date": date(2026, 1, 31),
    "total": _money(Decimal("121.00"), "EUR"),
    "open_amount": _money(Decimal("60.5"), "EUR"),
    "payment_reference": "RF18 0001",
    "payment_url": None,
    "direct_debit": False,
    "direct_debit_failed": False,
}


@settings(max_examples=3000, deadline=None)
@given(_invoices())
@example(_PLAIN)
@example({**_PLAIN, "prior_step": "reminder", "prior_step_on": date(2026, 2, 1)})
@example({**_PLAIN, "payment_url": "https://pay.example/1"})
def test_plain_invoice_is_the_validated_invoice(data: dict[str, Any]) -> None:
    fast = plain_invoice(data)
    try:
        full = Invoice.model_validate(data)
    except ValidationError:
        assert fast is None
        return
    if fast is None:
        return
    assert fast == full
    assert list(fast.__dict__) == list(full.__dict__)
    assert fast.model_fields_set == full.model_fields_set
    assert fast.total.model_fields_set == full.total.model_fields_set
    assert repr(fast) == repr(full)
    assert fast.model_dump_json() == full.model_dump_json()
    assert hash(fast) == hash(full)


def test_a_plain_invoice_takes_the_fast_path() -> None:
    assert plain_invoice(_PLAIN) == Invoice.model_validate(_PLAIN)
    assert plain_invoice({**_PLAIN, "payment_url": "https://pay.example/1"}) is not None
