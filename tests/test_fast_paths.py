"""The contact fast paths give exactly what the full validators give: the same normalised
value, or the same rejection (then the fast path declines and the full validator decides)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from debsync.actions.email.message import ascii_address
from debsync.connectors.base import Reject
from debsync.model import _dutch_phone, normalise_email, normalise_phone, plain_email
from debsync.store import Store
from debsync.store.schema import debtors, events, invoices, payments, sync_rejects, sync_runs
from debsync.sync.rows import insert_many, insert_rejects


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


@settings(max_examples=800, deadline=None)
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
    fast, full = plain_email(value), _full_email(value)
    if fast is not None:
        assert fast == full
        assert fast == validate_email(value, check_deliverability=False).ascii_email
        assert ascii_address.__wrapped__(value) == fast
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


@settings(max_examples=1000, deadline=None)
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
    assert plain_email("J.Jansen@Bedrijf.NL") == "J.Jansen@bedrijf.nl"
    assert normalise_email("debiteur1@example.nl") == "debiteur1@example.nl"
    assert plain_email("jan@münchen.de") is None  # IDN: the full validator


# -- the bulk insert path ------------------------------------------------------------------

_NOW = datetime(2026, 11, 22, 9, 30, 15, 123456, tzinfo=UTC)
_AMSTERDAM = _NOW.astimezone(ZoneInfo("Europe/Amsterdam"))  # the same instant, stored as UTC


def _rows(instance: str, run_id: int) -> dict[sa.Table, list[dict[str, Any]]]:
    base = {"instance": instance, "created_at": _NOW, "updated_at": _AMSTERDAM}
    return {
        debtors: [
            {
                **base,
                "external_id": f"D{n}",
                "name": "Bakkerij Één",
                "kind": "business",
                "emails": ["jan@bakkerij.nl"] if n else [],
                "phones": ["+31612345678"],
                "language": "nl",
                "address": {"lines": ["Dorpsstraat 1"], "postcode": "1234 AB"} if n else None,
                "kvk": "12345678" if n else None,
                "vat": None,
                "iban": None,
                "fingerprint": bytes(range(16)),
                "raw_fingerprint": None if n else b"\x00" * 16,
            }
            for n in range(2)
        ],
        invoices: [
            {
                **base,
                "external_id": f"F{n}",
                "number": f"2026-{n}",
                "debtor_id": "D1",
                "issue_date": date(2026, 1, 31),
                "due_date": date(2026, 3, 2 + n),
                "currency": "EUR",
                "total_minor": 10**12 + n,
                "open_minor": -5,
                "payment_reference": None,
                "payment_url": "https://betaal.nl/x" if n else None,
                "direct_debit": bool(n),
                "has_document": False,
                "direct_debit_failed": False,
                "reminded_by_source": True,
                "fingerprint": b"\xff" * 16,
                "raw_fingerprint": None,
                "state": "open",
                "closed_at": None,
            }
            for n in range(2)
        ],
        payments: [
            {
                "instance": instance,
                "external_id": None if n else f"P{n}",
                "invoice_id": "F1",
                "paid_on": date(2026, 2, 1),
                "currency": "JPY",
                "amount_minor": 700,
                "source": "derived" if n else "connector",
                "recorded_at": _AMSTERDAM,
            }
            for n in range(2)
        ],
        events: [
            {
                "at": _NOW,
                "instance": instance,
                "debtor_id": None,
                "invoice_id": "F1",
                "kind": "invoice.opened",
                "run_id": 7,
                "data": {"open": "12.50", "number": "2026-€1", "nested": [1, None, True]},
            }
        ],
        sync_rejects: [
            {
                "run_id": run_id,
                "kind": "debtor",
                "ref": "r1",
                "reason": "é",
                "invoice_id": None,
                "dropped": True,
            }
        ],
    }


def _stored(conn: sa.Connection, table: sa.Table, instance: str, run_id: int) -> list[Any]:
    """The rows as the driver hands them back, typed, without the key that tells them apart."""
    if "instance" in table.c:
        where, key = table.c.instance == instance, {"instance"}
    else:
        where, key = table.c.run_id == run_id, {"run_id"}
    query = sa.select(table).where(where).order_by(*table.primary_key.columns)
    sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
    keep = [i for i, c in enumerate(table.columns) if c.key not in key | {"id"}]
    return [[(type(row[i]), row[i]) for i in keep] for row in conn.exec_driver_sql(sql).all()]


def test_bulk_insert_stores_what_core_stores(store: Store) -> None:
    with store.engine.begin() as conn:
        runs = [
            conn.execute(
                sa.insert(sync_runs).returning(sync_runs.c.id),
                {
                    "instance": "x",
                    "started_at": _NOW,
                    "status": "ok",
                    "snapshot": True,
                    "counts": {},
                },
            ).scalar_one()
            for _ in range(2)
        ]
        core, bulk = _rows("core", runs[0]), _rows("bulk", runs[1])
        for table, rows in core.items():
            conn.execute(sa.insert(table), rows)
            insert_many(conn, table, bulk[table])
        for table in core:
            assert _stored(conn, table, "bulk", runs[1]) == _stored(conn, table, "core", runs[0])
            assert _stored(conn, table, "bulk", runs[1])


def test_rejects_are_logged_once_per_kind_of_problem(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="debsync.sync")
    rejects = [
        *(
            Reject("debtor", f"D{n}", "emails.0 dropped: not an address", dropped=True)
            for n in range(3)
        ),
        Reject("invoice", "F9", "due_date: not a date", invoice_id="F9"),
    ]
    with sqlite_store.engine.begin() as conn:
        run = conn.execute(
            sa.insert(sync_runs).returning(sync_runs.c.id),
            {"instance": "x", "started_at": _NOW, "status": "ok", "snapshot": True, "counts": {}},
        ).scalar_one()
        insert_rejects(conn, "x", run, rejects)
        stored = conn.execute(sa.select(sync_rejects.c.ref)).scalars().all()
    assert sorted(stored) == ["D0", "D1", "D2", "F9"]
    assert [r.getMessage() for r in caplog.records] == [
        "sync x: repaired 3 debtor record(s), e.g. D0: emails.0 dropped: not an address",
        "sync x: rejected 1 invoice record(s), e.g. F9: due_date: not a date",
    ]


def test_bulk_insert_refuses_to_skip_a_python_side_default(sqlite_store: Store) -> None:
    row = {"instance": "x", "started_at": _NOW, "status": "ok", "snapshot": True, "counts": {}}
    with sqlite_store.engine.begin() as conn, pytest.raises(ValueError, match="without pages"):
        insert_many(conn, sync_runs, [row])  # Core would fill in ``pages``
