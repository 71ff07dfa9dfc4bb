"""What the outbox loads for a claimed batch: each debtor's facts from its own administration
(the same debtor id in two of them never mixes), the open invoices and the paid ones an action
still names, on both backends."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from debsync.outbox.context import load_facts
from debsync.store import Store
from debsync.store.schema import debtors, invoices

from books import DUE, Book
from fakes import RecordingAction, invoice


def _copy_to(store: Store, instance: str, table: sa.Table, where: Any, **changes: Any) -> None:
    """Copy rows of the synced administration into another one, with ``changes``."""
    with store.engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(table).where(where))]
        conn.execute(sa.insert(table), [{**r, "instance": instance, **changes} for r in rows])


def _claimed(instance: str, debtor_id: str, *invoice_ids: str) -> Any:
    return SimpleNamespace(instance=instance, debtor_id=debtor_id, invoice_ids=list(invoice_ids))


def test_a_batch_over_two_administrations_keeps_their_debtors_apart(
    store: Store, tmp_path: Path
) -> None:
    book = Book(store, tmp_path, RecordingAction)
    book.book(
        invoice("F1", due=DUE),
        invoice("F2", "50.00", due=DUE),
        invoice("G1", debtor_id="D2", due=DUE),
    )
    _copy_to(store, "other", debtors, debtors.c.external_id == "D1", name="Andere B.V.")
    _copy_to(store, "other", invoices, invoices.c.external_id == "F1", open_minor=999)
    with store.engine.begin() as conn:  # paid since it was planned
        conn.execute(
            sa.update(invoices)
            .where(invoices.c.instance == "books", invoices.c.external_id == "F2")
            .values(state="closed", open_minor=0)
        )

    with store.engine.connect() as conn:
        facts = load_facts(
            conn,
            [_claimed("books", "D1", "F1", "F2"), _claimed("other", "D1", "F1")],
            book.config,
        )

    assert set(facts.debtors) == {("books", "D1"), ("other", "D1")}
    assert facts.debtor_context("other", "D1").name == "Andere B.V."
    assert facts.debtor_context("books", "D1").name != "Andere B.V."
    assert set(facts.invoices) == {("books", "F1"), ("books", "F2"), ("other", "F1")}
    paid = facts.invoice_facts(("books", "F2"))
    assert paid is not None and paid.closed
    other = facts.invoice_facts(("other", "F1"))
    assert other is not None and other.open_minor == 999


def test_a_paid_invoice_no_action_names_is_not_loaded(store: Store, tmp_path: Path) -> None:
    book = Book(store, tmp_path, RecordingAction)
    book.book(invoice("F1", due=DUE), invoice("F2", "50.00", due=DUE))
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(invoices).where(invoices.c.external_id == "F2").values(state="closed")
        )

    with store.engine.connect() as conn:
        facts = load_facts(conn, [_claimed("books", "D1", "F1")], book.config)

    assert set(facts.invoices) == {("books", "F1")}
    assert facts.credits("books", "D1", "EUR") == []
