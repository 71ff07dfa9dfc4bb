"""Exact Online's OData dialect as the connector reads and writes it: literals, /Date(ms)/ in
Dutch local time, padded codes, envelopes, the error message, aggregating split rows; and the
settings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import httpx
import pytest
from pydantic import ValidationError

from debsync.connectors.exact.mapping import Entry, invoice_data
from debsync.connectors.exact.odata import (
    AMSTERDAM,
    decode,
    error_detail,
    format_date,
    guid,
    int64,
    next_url,
    padded_code,
    parse_date,
    parse_day,
    results,
)
from debsync.connectors.exact.settings import ExactSettings

GUID = "6f1c9a2e-0b7d-4c8e-9f3a-2d5e8b1c4a70"


def test_literals() -> None:
    assert guid(GUID.upper()) == f"guid'{GUID}'"
    assert int64(123456789) == "123456789L"
    assert padded_code(1068) == "              1068" and len(padded_code("1068 ")) == 18
    with pytest.raises(ValueError, match="hexadecimal UUID"):
        guid("x' or 1 eq 1 or ID eq guid'")  # never a quote into a filter


def test_dates_are_dutch_local_time() -> None:
    # the milliseconds are Dutch wall time: 23:30 on 31 May stays 31 May (read as a UTC
    # instant and shown in Amsterdam it would be 01:30 on 1 June)
    assert parse_day("/Date(1717198200000)/") == date(2024, 5, 31)
    assert parse_day("/Date(1717200000000)/") == date(2024, 6, 1)
    moment = parse_date("/Date(1717200000000)/")
    assert moment == datetime(2024, 6, 1, tzinfo=AMSTERDAM)
    assert format_date(date(2024, 6, 1)) == "/Date(1717200000000)/"
    assert format_date(datetime(2026, 1, 31, 23, 30, tzinfo=AMSTERDAM)) == (
        f"/Date({(date(2026, 1, 31) - date(1970, 1, 1)).days * 86_400_000 + 84_600_000})/"
    )
    assert parse_day(None) is None
    with pytest.raises(ValueError, match="not an OData date"):
        parse_day("2024-06-01")


def test_envelopes_money_and_next() -> None:
    body = (
        b'{"d": {"results": [{"AmountFC": 1210.10}], "__next": '
        b'"https://start.exactonline.nl/api/v1/1/sync/Deleted?$skiptoken=5L"}}'
    )
    response = httpx.Response(200, content=body)
    (record,) = results(decode(response))
    assert record["AmountFC"] == Decimal("1210.10") and isinstance(record["AmountFC"], Decimal)
    assert next_url(response) == "https://start.exactonline.nl/api/v1/1/sync/Deleted?$skiptoken=5L"
    assert results({"d": [{"ID": 1}]}) == [{"ID": 1}]
    assert results({"d": {"ID": 1}}) == [{"ID": 1}]
    with pytest.raises(ValueError, match="no 'd'"):
        results({"error": {}})


def test_the_error_envelope_becomes_the_message() -> None:
    body = {
        "error": {"code": "", "message": {"lang": "", "value": "Filtering on X is not supported"}}
    }
    response = httpx.Response(400, json=body, headers={"Reason": "TooEarlyToRefreshTokens"})
    assert error_detail(response) == "Filtering on X is not supported; TooEarlyToRefreshTokens"
    assert error_detail(httpx.Response(500, text="<html>")) is None


def row(term: str, amount: str, status: int, due: date, **fields: object) -> dict[str, object]:
    return {
        "ID": term,
        "LineType": 20,
        "Account": GUID,
        "InvoiceNumber": 24700123,
        "InvoiceDate": format_date(date(2026, 9, 1)),
        "DueDate": format_date(due),
        "TransactionAmountFC": Decimal("1210.00"),
        "AmountFC": Decimal(amount),
        "Currency": "EUR",
        "Status": status,
        "IsFullyPaid": status == 50,
        **fields,
    }


def test_split_rows_make_one_invoice_with_the_open_parts() -> None:
    entry = Entry()
    entry.apply(row("a", "400.00", 50, date(2026, 10, 1)))  # the matched part
    entry.apply(row("b", "405.00", 20, date(2026, 11, 1)))  # two instalments still open
    entry.apply(row("c", "405.00", 30, date(2026, 10, 15), PaymentMethod="I"))
    data = invoice_data(3001, "e1", Entry.from_state(entry.state()))
    assert data["open_amount"]["amount"] == Decimal("810.00")
    assert data["total"]["amount"] == Decimal("1210.00")
    assert data["due_date"] == date(2026, 10, 15)
    assert data["direct_debit"] is True
    assert (data["external_id"], data["debtor_id"]) == ("3001:e1", f"3001:{GUID}")
    entry.apply(row("b", "405.00", 50, date(2026, 11, 1)))
    entry.apply(row("c", "405.00", 50, date(2026, 10, 15)))
    assert not entry.owed


def test_settings_need_a_division_and_pick_the_country_host() -> None:
    base = {"client_id": "x", "client_secret": "y"}
    assert ExactSettings.model_validate(base).api_root == "https://start.exactonline.nl"
    uk = ExactSettings.model_validate({**base, "country": "uk"})
    assert uk.api_root == "https://start.exactonline.co.uk"
    local = ExactSettings.model_validate({**base, "base_url": "http://127.0.0.1:8080/"})
    assert local.api_root == "http://127.0.0.1:8080"
    with pytest.raises(ValidationError, match="at least one division"):
        ExactSettings.model_validate({**base, "divisions": []})
